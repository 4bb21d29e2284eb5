# syntax=docker/dockerfile:1
# Build: docker build -t rivven .
# Run (it listens on 0.0.0.0, so it refuses to start open; docs/security.md):
#   docker run -p 9190:9190 -p 9191:9191 \
#     -v /etc/rivven/tokens.yaml:/run/secrets/rivven-tokens:ro -e RIVVEN_AUTH_TOKENS_FILE=/run/secrets/rivven-tokens rivven
#   docker run -p 9190:9190 -e RIVVEN_AUTH_ALLOW_ANONYMOUS=true rivven     # a private network only
# In a fleet (docs/operations.md), one per broker, on one Redis:
#   docker run -p 9190:9190 -p 9191:9191 ... -e RIVVEN_STORAGE_BACKEND=redis -e RIVVEN_FLEET_ENABLED=true \
#     -e RIVVEN_STORAGE_REDIS_URL=redis://redis.internal:6379/0 -e RIVVEN_FLEET_NODE_ID=broker-1 rivven
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci: the lockfile lists every platform's optional packages (a clean install leaves it as it is), so the
# image gets exactly the versions it pins.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    RIVVEN_SERVER_HOST=0.0.0.0 \
    RIVVEN_METRICS_HOST=0.0.0.0 \
    RIVVEN_STORAGE_DATA_DIR=/var/lib/rivven
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json rivven.yaml.example ./
COPY bin ./bin
RUN mkdir -p /var/lib/rivven && chown node:node /var/lib/rivven
USER node
VOLUME ["/var/lib/rivven"]
EXPOSE 9190 9191
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/rivven"]
CMD ["serve"]
