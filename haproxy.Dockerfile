# The HAProxy instance image: Debian's HAProxy 2.6 and the dataplane that
# runs it, non-root. The operator's Deployment passes "dataplane" and its
# flags as arguments.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/haproxy-tcp-operator ./operator/cmd/haproxy-tcp-operator

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o 65532 -g 65532 /var/lib/haproxy-tcp /var/run/haproxy-tcp /etc/haproxy-tcp/certs
COPY --from=build /out/haproxy-tcp-operator /usr/local/bin/haproxy-tcp-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/haproxy-tcp-operator"]
CMD ["dataplane"]
