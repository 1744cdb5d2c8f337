# `emotion serve` in a container: onnxruntime, FastAPI and uvicorn with the released real-face
# model and the on-device client (/app/); no PyTorch, timm or DVC (the `serve` extra).
#
#   make setup                       # the client's pinned npm packages and the face detector
#   podman build -f docker/serve.Dockerfile -t emotion-serve .     (or docker build)
#   podman run --rm -p 8000:8000 emotion-serve
#
# BASE_IMAGE: any Debian bookworm image with Python 3.11 (`python3 -m venv` must work).
ARG BASE_IMAGE=docker.io/library/python:3.11.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# The shared libraries mediapipe (EGL, GLES) and OpenCV (GL, GLib, SM/ICE) load; nothing else
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libegl1 libgles2 libgl1 libglib2.0-0 libsm6 libice6 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/emotion
COPY requirements.txt pyproject.toml README.md LICENSE ./
COPY src ./src
# Compiled to bytecode at install: the server's user cannot write .pyc files, and compiling the
# imports at every start would add about a second to the first answer.
# Behind a TLS-inspecting proxy, pass its CA bundle: --secret id=ca,src=/path/to/ca-bundle.crt
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 -m venv /opt/venv \
    && pip install -c requirements.txt ".[serve]" \
    && ! python3 -c "import torch" 2>/dev/null

COPY client ./client
COPY release/fer2013-v1 ./release/fer2013-v1
COPY assets/face_detection_short_range.tflite ./assets/

USER 65534:65534
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
    CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["emotion", "serve", "--host", "0.0.0.0", "--port", "8000", "--model-dir", "release/fer2013-v1"]
