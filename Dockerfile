# One image for every process of docker-compose.yml (web, writer, worker, beat).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml ./
RUN pip install --no-cache-dir .
COPY . .
RUN useradd --system --home /app nexai && chown nexai /app
USER nexai
EXPOSE 8000
CMD ["sh", "scripts/web.sh"]
