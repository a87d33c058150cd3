# syntax=docker/dockerfile:1
# Build: docker build -t agentbot .
# Run:   docker run -p 8080:8080 -e GITLAB_TOKEN=… -e GITLAB_WEBHOOK_SECRET=… -v agentbot-data:/data agentbot
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X gitlab.com/agentbot/agentbot/internal/cli.Version=${VERSION}" \
      -o /out/agentbot ./cmd/agentbot \
 && mkdir -p /out/data /out/tmp && chmod 1777 /out/tmp

# A static binary needs nothing but CA certificates, a writable data folder
# for the SQLite queue, and /tmp for workspaces.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/tmp /tmp
COPY --from=build /out/agentbot /agentbot
USER 65532:65532
WORKDIR /data
ENV AGENTBOT_DB=/data/agentbot.db LISTEN_ADDR=:8080
EXPOSE 8080
ENTRYPOINT ["/agentbot"]
CMD ["serve"]
