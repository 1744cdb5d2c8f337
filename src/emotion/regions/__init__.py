"""Facial regions of real faces from MediaPipe's face-mesh landmarks (stage ``regions``)."""
