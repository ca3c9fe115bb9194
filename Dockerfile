# pixseek's image: the CLI, the API/web server and the indexer, for the CPU or an NVIDIA GPU.
#
#   docker build -t pixseek:cpu .                                   # CPU build of torch (small)
#   docker build -t pixseek:cuda --build-arg TORCH_VARIANT=cuda .   # CUDA build of torch (GPU)
#
# TORCH_VARIANT picks the build of torch/torchvision (the only packages that differ):
#   cpu    PyTorch's CPU wheels (several GB smaller than the CUDA build; runs anywhere)
#   cuda   PyPI's default wheels, CUDA 13.0, which bundle the CUDA runtime, cuDNN and nvJPEG
#          (needs an NVIDIA driver for CUDA 13 on the host, and the NVIDIA Container Toolkit)
#   cuXYZ  PyTorch's wheels for another CUDA release (e.g. cu128 for an older driver), where
#          PyTorch publishes one for the pinned torch
# No CUDA base image is needed: the CUDA wheels carry their own libraries, and the host's
# driver comes in through the NVIDIA Container Toolkit (`deploy.resources.reservations.devices`
# in docker-compose.yml, or `docker run --gpus all`).
#
# At start, docker/entrypoint.sh waits for the database, runs `pixseek db upgrade` and then
# runs the command (by default the server on port 8000). Run it with an init (`docker run
# --init`, `init: true` in compose) so that `docker stop` reaches every process at once.

# Pinned to a patch release: a rebuild gets the same Python. The base is a build argument, but
# the image expects a Debian-based official Python image (python, pip, useradd).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG TORCH_VARIANT=cpu
# The user the server and indexer run as; 1000 is the first user on most Linux hosts, which
# helps when the photos mounted into the container are readable by their owner only.
ARG PIXSEEK_UID=1000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIXSEEK_DATA_DIR=/data \
    PIXSEEK_CACHE_DIR=/cache/pixseek \
    HF_HOME=/cache/huggingface \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

RUN useradd --create-home --uid "${PIXSEEK_UID}" --user-group pixseek \
 && mkdir -p /data /cache/pixseek /cache/huggingface /app \
 && chown -R pixseek:pixseek /data /cache

WORKDIR /app

# torch and torchvision first, in a layer of their own (the largest, and the one that changes
# least). The pair is pinned in pyproject.toml, and tests/test_deployment.py keeps this line equal.
RUN case "${TORCH_VARIANT}" in \
      cpu) index=https://download.pytorch.org/whl/cpu ;; \
      cuda) index=https://pypi.org/simple ;; \
      cu[0-9]*) index="https://download.pytorch.org/whl/${TORCH_VARIANT}" ;; \
      *) echo "TORCH_VARIANT must be cpu, cuda or cuXYZ (e.g. cu128), not '${TORCH_VARIANT}'" >&2; \
         exit 1 ;; \
    esac \
 && pip install --index-url "${index}" "torch==2.14.1" "torchvision==0.29.1"

# The other dependencies, read from pyproject.toml, so that editing the sources reuses this layer.
# torch/torchvision are already installed at the pinned versions and are left as they are.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY search ./search
COPY indexer ./indexer
COPY web ./web
COPY migrations ./migrations
RUN pip install --no-deps . \
 && rm -rf build ./*.egg-info

COPY docker /opt/pixseek/docker

USER pixseek
# The catalog/vectors/indexes (unless PIXSEEK_DATABASE_URL puts the catalog elsewhere) and the
# model weights: both outlive the container.
VOLUME ["/data", "/cache"]
EXPOSE 8000
# /readyz answers 200 once the catalog is reachable and the models are warm. The start period
# leaves time for a first download of the weights into /cache.
HEALTHCHECK --interval=30s --timeout=10s --start-period=300s --retries=3 \
  CMD ["python", "/opt/pixseek/docker/healthcheck.py", "http://127.0.0.1:8000/readyz"]
ENTRYPOINT ["/bin/sh", "/opt/pixseek/docker/entrypoint.sh"]
CMD ["pixseek", "serve", "--host", "0.0.0.0", "--port", "8000"]
