# Type stub for the compiled module gradkit._core (csrc/bindings/*.cpp). Call through gradkit.
__version__: str

def detected_isa() -> str:
    """Best instruction set the CPU and this build support."""

def active_isa() -> str:
    """Instruction set the kernels use now."""

def force_isa(isa: str) -> None:
    """Lower the instruction set in use (for testing the fallbacks)."""

def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
