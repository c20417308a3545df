/* SPDX-License-Identifier: Apache-2.0 */
#ifndef BERTH_CLOCK_H
#define BERTH_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: deadlines, timeouts, backoffs. */
int64_t clock_mono_ms(void);
/* Milliseconds since the epoch (CLOCK_REALTIME): what is persisted or shown to people. */
int64_t clock_wall_ms(void);

#endif
