/*
 * health_svc.c — grpc.health.v1.Health/Check: SERVING, or NOT_SERVING while
 * the server drains after SIGTERM. Any service name is answered alike: the
 * process serves all of its services or none.
 */
#include "grpc/health/v1/health.pb-c.h"
#include "svc/svc_internal.h"

static void check_on_message(yj_call *call, const uint8_t *msg, size_t len_bytes)
{
    ProtobufCMessage *m = svc_decode(call, &grpc__health__v1__health_check_request__descriptor,
                                     msg, len_bytes);
    if (!m) return;
    protobuf_c_message_free_unpacked(m, NULL);
    yj_svc *svc = svc_of(call);
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    int draining = svc->server && yj_server_draining(svc->server);
    resp.status = draining ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
                           : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    svc_reply(call, &resp.base);
}

const svc_route svc_health_routes[] = {
    {&grpc__health__v1__health__descriptor, "Check", YJ_RPC_UNARY, .on_message = check_on_message},
};
const size_t svc_health_n_routes = sizeof svc_health_routes / sizeof svc_health_routes[0];
