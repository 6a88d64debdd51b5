/* spanship.h - ship the spans crashed processes spooled (see
 * preload/spanspool.h for the file format and who writes it).
 *
 * Exporter thread only, once, when it starts.
 */
#ifndef CRD_SPANSHIP_H
#define CRD_SPANSHIP_H

#include <stdint.h>

/* Claim every spans file of our service in the spool directory, put its
 * spans on the export queue (they go out with the next export, to every
 * configured sink), and remove it. When the queue or the record pool is
 * full, drain(deadline) is called to export what is queued. Returns the
 * number of spans queued. Files of another layout are removed with one
 * message; files of another service are left alone. */
long crd_spanship_run(uint64_t deadline, void (*drain)(uint64_t deadline));

#endif
