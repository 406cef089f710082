# policygate service image: OPA from the official static image, slim Python runtime, non-root.
FROM openpolicyagent/opa:1.22.3-static AS opa

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY src ./src
# the locked stack (exact versions and hashes), then policygate itself without resolving again
RUN pip install --no-cache-dir --prefix=/install --require-hashes -r requirements.lock \
 && pip install --no-cache-dir --prefix=/install --no-deps .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app policygate
COPY --from=build /install /usr/local
COPY --from=opa /opa /usr/local/bin/opa
WORKDIR /app
COPY rego ./rego
# every rule must deny its example before the policies may decide (docs/policy-authoring.md)
COPY examples/evidence ./examples/evidence
ENV POLICYGATE_POLICY_DIR=/app/rego \
    POLICYGATE_EXAMPLES_DIR=/app/examples/evidence \
    POLICYGATE_OPA_BIN=/usr/local/bin/opa \
    POLICYGATE_DB_URL=sqlite:////app/data/decisions.db \
    PYTHONUNBUFFERED=1
RUN mkdir -p /app/data && chown -R policygate /app/data
USER 10001
EXPOSE 8080
ENTRYPOINT ["policygate", "serve", "--host", "0.0.0.0", "--port", "8080"]
