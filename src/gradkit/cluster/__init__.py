"""Clustering: k-means with scikit-learn's semantics on gradkit's fused kernels."""
from gradkit.cluster.kmeans import KMeans, kmeans_plusplus

__all__ = ["KMeans", "kmeans_plusplus"]
