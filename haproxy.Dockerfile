# The HAProxy instance image: Debian's HAProxy 2.6 and the dataplane that
# runs it, non-root. The operator's Deployment passes "dataplane" and its
# flags as arguments.
#
# Mappings may listen on ports below 1024. A non-root process gets no
# capability from the container's set when it executes a program, so the
# haproxy binary carries cap_net_bind_service as a file capability (the
# container's bounding set must keep NET_BIND_SERVICE; some kernels ignore
# file capabilities under allowPrivilegeEscalation: false, where the Pod
# sysctl net.ipv4.ip_unprivileged_port_start serves instead).
# deploy/images tests these steps.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/haproxy-tcp-operator ./operator/cmd/haproxy-tcp-operator

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends haproxy ca-certificates libcap2-bin \
 && setcap 'cap_net_bind_service=+ep' /usr/sbin/haproxy \
 && getcap /usr/sbin/haproxy | grep -q cap_net_bind_service \
 && apt-get purge -y libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o 65532 -g 65532 /var/lib/haproxy-tcp /var/run/haproxy-tcp /etc/haproxy-tcp/certs
COPY --from=build /out/haproxy-tcp-operator /usr/local/bin/haproxy-tcp-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/haproxy-tcp-operator"]
CMD ["dataplane"]
