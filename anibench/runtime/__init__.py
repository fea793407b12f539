"""The model runtime: devices and dtypes, the weights manifest, and the runtime context of a pass."""
