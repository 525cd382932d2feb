/* results_int.h -- what the files of lib/results/ share and no one else
 * sees: the dashboard's page, which make builds from dashboard.html into
 * dashboard_html.c (a build product, not in git). */
#ifndef RN_RESULTS_RESULTS_INT_H
#define RN_RESULTS_RESULTS_INT_H

#include <stddef.h>

#include "results/results.h"

extern const unsigned char rn_dash__page[];
extern const size_t rn_dash__page_len;

#endif
