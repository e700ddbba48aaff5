"""Recording input/output: the Sensorium 2023 folder layout, in-memory recordings, atomic writes."""

from napari_movierecon.io.atomic import atomic_save_npy, staged_directory
from napari_movierecon.io.memory import InMemoryRecording, StatisticsAccumulator
from napari_movierecon.io.sensorium import SensoriumRecording, write_sensorium

__all__ = [
    "InMemoryRecording",
    "SensoriumRecording",
    "StatisticsAccumulator",
    "atomic_save_npy",
    "staged_directory",
    "write_sensorium",
]
