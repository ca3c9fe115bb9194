# pixseek image. CPU by default; the GPU indexer builds the same file with
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PIXSEEK_DATA_DIR=/data \
    HF_HOME=/models/huggingface

RUN useradd --create-home --uid 1000 pixseek \
 && mkdir -p /data /models/huggingface /app \
 && chown -R pixseek:pixseek /data /models /app

WORKDIR /app
# Dependencies first (cached layer): torch/torchvision from the chosen index, the rest from PyPI.
COPY pyproject.toml README.md ./
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" "torch==2.14.1" "torchvision==0.29.1"
COPY indexer ./indexer
COPY search ./search
COPY web ./web
COPY migrations ./migrations
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" .

USER pixseek
VOLUME ["/data", "/models"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["sh", "-c", "pixseek db upgrade && pixseek serve --host 0.0.0.0 --port 8000"]
