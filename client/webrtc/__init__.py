"""WebRTC: a MediaStreamTrack that beautifies any video track through a facestream session (the bot kit),
and the `facestream-webrtc` gateway that serves a browser page."""
from .track import BeautifiedTrack, TrackResult, TrackStats, add_beautified_track

__all__ = ["BeautifiedTrack", "TrackResult", "TrackStats", "add_beautified_track"]
