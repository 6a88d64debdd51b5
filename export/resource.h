/* resource.h - the OTel Resource every export carries.
 *
 * Built on the exporter thread when it starts (so a fork child reports its
 * own pid): service.name, OTEL_RESOURCE_ATTRIBUTES, host.name, process.pid,
 * process.executable.name, telemetry.sdk.{name,language,version}.
 */
#ifndef CRD_RESOURCE_H
#define CRD_RESOURCE_H

#include "../preload/config.h"
#include "../preload/span.h"

#define CRD_RESOURCE_MAX_ATTRS (CRD_MAX_RESOURCE_ATTRS + 8)

struct crd_resource {
	struct crd_attr attrs[CRD_RESOURCE_MAX_ATTRS];
	struct crd_attr_list list;
	char host[256];
	char exe[64];
};

void crd_resource_build(struct crd_resource *r);

/* Value of a string attribute, or NULL. */
const char *crd_resource_get(const struct crd_resource *r, const char *key);

#endif
