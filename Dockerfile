# The Airflow image linkage runs on: the pinned Airflow release plus the pinned stack.
# The linkage package itself is mounted (include/) and found through PYTHONPATH, so code
# changes need no rebuild; requirements.txt changes do (`docker compose build`).
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11
ARG AIRFLOW_VERSION
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt
ENV PYTHONPATH=/opt/airflow/include \
    GX_ANALYTICS_ENABLED=false \
    LINKAGE_BACKUP_DIR=/opt/airflow/backups \
    LINKAGE_DOCS_DIR=/opt/airflow/gx_docs
