# The services' image for docker-compose.yml. Node 26 runs the TypeScript sources directly (type stripping).
FROM node:26-slim
WORKDIR /app
COPY package.json package-lock.json ./
# The workspaces' manifests, which npm ci expects; the services run from the sources, not the SDK's build.
COPY packages/producer-sdk/package.json ./packages/producer-sdk/
COPY examples/workflow-engine/package.json ./examples/workflow-engine/
# The pinned `node` devDependency is for machines without Node 26; the image has it already.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY schemas ./schemas
COPY services ./services
# The console's data directory, owned by the user it runs as, so a named volume mounted there starts writable.
RUN mkdir -p /var/lib/workflow-webhooks/console && chown -R node:node /var/lib/workflow-webhooks
USER node
CMD ["node", "services/cli/setup.ts"]
