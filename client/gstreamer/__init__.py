"""GStreamer: the `facestream` element, a client of the same gRPC contract, for media pipelines."""
