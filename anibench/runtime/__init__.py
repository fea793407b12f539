"""The model runtime: devices and precision, weights (more modules join as the runtime grows).

Importing this package never imports torch; functions that need it import it on first use.
"""

from anibench.runtime.devices import (
    DeviceError, DeviceRequest, MissingDependencyError, RuntimeSelection, parse_device, parse_dtype, select_runtime,
)
from anibench.runtime.weights import (
    ResolvedWeight, WeightEntry, WeightsError, WeightStatus, WeightStore, load_state_dict,
)

__all__ = [
    "DeviceError", "DeviceRequest", "MissingDependencyError", "RuntimeSelection", "parse_device", "parse_dtype",
    "select_runtime", "ResolvedWeight", "WeightEntry", "WeightsError", "WeightStatus", "WeightStore",
    "load_state_dict",
]
