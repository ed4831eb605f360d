# mri2pet in a container, for clusters (Docker here; Apptainer / Singularity build from it: docs/cluster.md).
#   docker build -t mri2pet:cpu .                                  # CPU build of torch (small)
#   docker build -t mri2pet:cuda --build-arg VARIANT=cuda .        # CUDA build of torch (from PyPI, several GB)
# The shipped weights are inside the image (/opt/mri2pet/weights); nothing is downloaded at run time.
FROM python:3.11-slim

ARG VARIANT=cpu
ARG TORCH_VERSION=2.13.0

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /opt/mri2pet

# torch first, in its own layer: the CPU wheel from PyTorch's CPU index, or PyPI's CUDA wheel
RUN if [ "$VARIANT" = "cpu" ]; then \
        pip install "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu; \
    elif [ "$VARIANT" = "cuda" ]; then \
        pip install "torch==${TORCH_VERSION}"; \
    else \
        echo "VARIANT must be cpu or cuda, not ${VARIANT}" >&2; exit 1; \
    fi

COPY pyproject.toml README.md ./
COPY mri2pet_cli ./mri2pet_cli
COPY weights ./weights
# editable, so that the package finds the weights folder beside it (weights.REPO_WEIGHTS_DIR)
RUN pip install -e . && mri2pet models verify

RUN useradd --create-home --uid 1000 mri2pet
USER 1000
WORKDIR /data
ENTRYPOINT ["mri2pet"]
CMD ["--help"]
