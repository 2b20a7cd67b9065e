# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The Cython backend, the scikit-learn way: typed loops and GEMM through
scipy.linalg.cython_blas. Matches ``ops_numpy``; kernel core only."""
