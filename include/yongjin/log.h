/*
 * log.h — one line per event on stderr, with a UTC timestamp and a level:
 *   2026-11-23T03:05:10.123Z INFO listening on 127.0.0.1:50051
 * The level is the process's (set once at start from --log-level); nothing
 * is logged per request at INFO.
 */
#ifndef YONGJIN_LOG_H
#define YONGJIN_LOG_H

enum { YJ_LOG_DEBUG = 0, YJ_LOG_INFO = 1, YJ_LOG_WARN = 2, YJ_LOG_ERROR = 3 };

void yj_log_set_level(int level);
int yj_log_level(void);
/* Parses "debug", "info", "warn", "error"; -1 for anything else. */
int yj_log_parse_level(const char *name);
void yj_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
