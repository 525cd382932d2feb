/* brokerd_admin.h -- `brokerd topics`: list, describe, create and delete
 * topics on any Kafka-protocol broker through librdkafka's admin API. */
#ifndef BROKERD_ADMIN_H
#define BROKERD_ADMIN_H

/* Run `brokerd topics` with argv[1] == "topics"; usage() prints the help and
 * exits. Returns the exit status: 0, or 1 after a message on stderr (usage
 * errors exit 2 from here). */
int brokerd_topics(int argc, char **argv, void (*usage)(void));

#endif
