# syntax=docker/dockerfile:1
# The vsr GPU image.
#   docker build -t vsr:0.1.0 .
#   docker run --rm --gpus all -v "$PWD:/data" vsr:0.1.0 enhance in.mp4 out.mp4
#   docker run --rm --gpus all -v /srv/footage:/data vsr:0.1.0 batch incoming --recursive --out-dir enhanced
#
# Base: PyTorch's CUDA runtime image (CUDA 12.4 and cuDNN 9 runtime libraries, torch built for CUDA, no
# compilers) on Python 3.11, the newest Python with wheels for yuface, the CNN face detector.
# Two stages: the first turns the package (with its weights and cards) and its dependencies into wheels;
# the second installs only those wheels, from a bind mount, so no sources, build tools or wheel files
# stay in the image.
ARG BASE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

FROM ${BASE} AS build
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY vsr ./vsr
COPY models ./models
COPY pipelines ./pipelines
# torch comes from the base image and is not downloaded again.  The list below is setup.cfg's
# install_requires without torch, plus the face extra (tests/test_batch_docker.py keeps them equal).
RUN python -c "import sys; assert sys.version_info[:2] == (3, 11), 'yuface needs Python 3.11: ' + sys.version" \
 && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels \
      "av>=14" \
      "numpy>=1.24" \
      "opencv-python-headless>=4.8,<5" \
      "ffmpeg-python>=0.2" \
      "rich>=13" \
      "click>=8.1" \
      "safetensors>=0.4" \
      "pillow>=10" \
      "yuface>=2023.5"

FROM ${BASE} AS runtime
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,video \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "vsr-faces[face]==0.1.0" \
 && vsr --version \
 && python -c "import yuface, torch, vsr.models.registry" \
 && useradd --create-home --uid 1000 --user-group --shell /usr/sbin/nologin vsr
USER 1000:1000
WORKDIR /data
ENTRYPOINT ["vsr"]
CMD ["--help"]
