# The Airflow image linkage runs on: the pinned Airflow release plus the pinned stack.
# The linkage package itself is mounted (include/) and found through PYTHONPATH, so code
# changes need no rebuild; requirements.txt changes do (`docker compose build`).
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11
ARG AIRFLOW_VERSION
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt
# deploy/ (the hostname callable deploy/airflow.env names, the secrets initialiser) is in the
# image too, for runtimes that mount nothing (KubernetesExecutor pods); compose mounts it over.
COPY --chown=airflow:0 deploy /opt/airflow/deploy
# Volumes mounted here start with these owners: writable by the airflow user (any AIRFLOW_UID, group 0).
RUN mkdir -p /opt/airflow/backups /opt/airflow/gx_docs /opt/airflow/secrets \
 && chmod -R g+rwX /opt/airflow/backups /opt/airflow/gx_docs
ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/deploy \
    GX_ANALYTICS_ENABLED=false \
    LINKAGE_BACKUP_DIR=/opt/airflow/backups \
    LINKAGE_DOCS_DIR=/opt/airflow/gx_docs
