# Foresight's image: `node dist/cli.js <command>` (serve, allocate, config, ...).
# Both stages use the same exact Node 20 Debian bookworm slim release (pinned tag; pin the digest
# too in your build pipeline: node:20.18.1-bookworm-slim@sha256:<digest>).

# --- build: install every dependency, compile the WASM engine and bundle the CLI ---------------
FROM node:20.18.1-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json asconfig.json ./
COPY assembly ./assembly
COPY scripts ./scripts
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime: production dependencies, the bundle and the WASM module only --------------------
FROM node:20.18.1-bookworm-slim
ENV NODE_ENV=production \
    HOME=/tmp
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/engine.wasm ./build/engine.wasm
# A numeric non-root user (runAsNonRoot can verify it); the root filesystem may be read-only:
# nothing is written outside /tmp.
USER 10001:10001
EXPOSE 9464 8081
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["--help"]
