/* resource.c - the Resource attributes (see resource.h). */
#include "resource.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../preload/version.h"

static void put_str(struct crd_resource *r, const char *key, const char *v)
{
	if (r->list.n < CRD_RESOURCE_MAX_ATTRS)
		r->attrs[r->list.n++] =
		    (struct crd_attr){.key = key, .type = CRD_ATTR_STR, .s = v, .len = strlen(v)};
}

void crd_resource_build(struct crd_resource *r)
{
	memset(r, 0, sizeof(*r));
	r->list.attrs = r->attrs;
	put_str(r, "service.name", crd_cfg.service_name);
	/* User attributes; service.name was settled in crd_config_load(). */
	for (size_t i = 0; i < crd_cfg.nresource; i++)
		if (strcmp(crd_cfg.resource[i].key, "service.name"))
			put_str(r, crd_cfg.resource[i].key, crd_cfg.resource[i].value);
	if (gethostname(r->host, sizeof(r->host) - 1) == 0)
		put_str(r, "host.name", r->host);
	if (r->list.n < CRD_RESOURCE_MAX_ATTRS)
		r->attrs[r->list.n++] =
		    (struct crd_attr){.key = "process.pid", .type = CRD_ATTR_INT, .i = getpid()};
	strncpy(r->exe, program_invocation_short_name, sizeof(r->exe) - 1);
	put_str(r, "process.executable.name", r->exe);
	put_str(r, "telemetry.sdk.name", CRD_NAME);
	put_str(r, "telemetry.sdk.language", "c");
	put_str(r, "telemetry.sdk.version", CRD_VERSION);
}

const char *crd_resource_get(const struct crd_resource *r, const char *key)
{
	for (size_t i = 0; i < r->list.n; i++)
		if (r->attrs[i].type == CRD_ATTR_STR && !strcmp(r->attrs[i].key, key))
			return r->attrs[i].s;
	return NULL;
}
