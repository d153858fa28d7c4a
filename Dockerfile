# The operator image: the haproxy-tcp-operator binary, static, non-root.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/cli.version=${VERSION}" -o /out/haproxy-tcp-operator ./operator/cmd/haproxy-tcp-operator

FROM debian:bookworm-slim AS certs
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*

FROM scratch
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/haproxy-tcp-operator /haproxy-tcp-operator
USER 65532:65532
ENTRYPOINT ["/haproxy-tcp-operator"]
CMD ["run"]
