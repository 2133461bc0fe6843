"""The training loop: `train(spec, on_event, should_stop)` runs a job spec and reports events.

See `docs/training.md` for what a run does, the events and metric names, what a
checkpoint holds and what is guaranteed to be reproducible.
"""

from sam_core.training.events import Checkpoint, Event, Finished, Metrics, Progress, Started
from sam_core.training.loop import train

__all__ = ["Checkpoint", "Event", "Finished", "Metrics", "Progress", "Started", "train"]
