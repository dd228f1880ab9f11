"""WebRTC: a MediaStreamTrack that beautifies any video track through a facestream session (the bot kit),
and the `facestream-webrtc` gateway that serves a browser page."""
