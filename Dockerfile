# The worker image used by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stream ./stream
COPY schemas ./schemas
RUN pip install --no-cache-dir .
ENV SEGMENTS_HOME=/data
# The worker's state (data_dir, default .segments/worker) is relative to here: the volume.
WORKDIR /data
VOLUME ["/data"]
ENTRYPOINT ["segments"]
CMD ["worker"]
