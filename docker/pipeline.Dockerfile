# The pipeline's environment in a container: PyTorch, timm, DVC and the rest of requirements.txt.
# The project itself is not baked in: mount a clone at /work and run its commands there.
#
#   podman build -f docker/pipeline.Dockerfile -t emotion-pipeline .             (or docker build)
#   podman run --rm -v "$PWD:/work" emotion-pipeline dvc repro
#   docker run --rm --gpus all -v "$PWD:/work" emotion-pipeline dvc repro      (NVIDIA GPUs)
#
# TORCH_INDEX_URL picks the PyTorch build:
#   https://pypi.org/simple (default)     the CUDA build: its CUDA libraries are pip packages, so
#                                          the base needs no CUDA; GPUs come from the NVIDIA
#                                          Container Toolkit at run time; runs on CPU as well
#   https://download.pytorch.org/whl/cpu  the CPU-only build (same version, no CUDA libraries)
# BASE_IMAGE: any Debian bookworm image with Python 3.11 (`python3 -m venv` must work).
# A local package mirror works as it does for pip: podman build -v /mirror:/mirror:ro
#   --build-arg PIP_EXTRA_INDEX_URL=file:///mirror/simple (and/or PIP_FIND_LINKS).
ARG BASE_IMAGE=docker.io/library/python:3.11.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG TORCH_INDEX_URL=https://pypi.org/simple
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DVC_NO_ANALYTICS=1 \
    PATH=/opt/venv/bin:$PATH

# git for DVC; the shared libraries mediapipe (EGL, GLES) and OpenCV (GL, GLib, SM/ICE) load.
# The mounted clone belongs to the host's user: let git work in it under any container user.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        git libegl1 libgles2 libgl1 libglib2.0-0 libsm6 libice6 \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory /work

WORKDIR /work
# The torch pair first (from TORCH_INDEX_URL), then every other pin: one layer that only a change
# of requirements.txt rebuilds. Compiled to bytecode at install: every stage is a new Python
# process importing torch, timm and DVC, and PYTHONDONTWRITEBYTECODE keeps the mounted clone clean.
# Behind a TLS-inspecting proxy, pass its CA bundle: --secret id=ca,src=/path/to/ca-bundle.crt
COPY requirements.txt ./
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 -m venv /opt/venv \
    && pip install --index-url "$TORCH_INDEX_URL" $(grep -E '^torch(vision)?==' requirements.txt) \
    && pip install -r requirements.txt \
    && python3 -c "import torch, torchvision, timm, dvc; print('torch', torch.__version__)"

# `emotion` is an editable install of /work/src: the clone mounted at /work is the code that runs
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps -e . && rm -rf src/*.egg-info

CMD ["dvc", "repro"]
