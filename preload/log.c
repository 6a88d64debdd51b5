/* log.c - one-line diagnostics on stderr (see log.h). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "real.h"

int crd_log_level = CRD_LOG_WARN;

/* A diagnostic longer than this is cut; one line is what we promise. */
#define CRD_LOG_LINE_MAX 512

void crd_log(int level, const char *fmt, ...)
{
	char line[CRD_LOG_LINE_MAX];
	int saved_errno = errno;
	size_t n;
	va_list ap;

	if (level > crd_log_level)
		return;
	memcpy(line, "cruddur: ", 9);
	va_start(ap, fmt);
	vsnprintf(line + 9, sizeof(line) - 10, fmt, ap);
	va_end(ap);
	n = strlen(line);
	/* One line, always: fold any newline a value smuggled in. */
	for (size_t i = 9; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	crd_guard++;
	(void)!CRD_REAL(write)(2, line, n);
	crd_guard--;
	errno = saved_errno;
}
