/*
 * hook_pg.c - libpq's synchronous API in fibers, through libfiber-hook,
 * against the PostgreSQL cluster that tests/hook_pg.sh makes and starts.
 * Prints TAP.
 *
 *   hook_pg CONNINFO
 *
 * 20 fibers each open their own connection and run
 * SELECT pg_sleep(0.2), i * 2: all are done in under a second of wall
 * time (one after another they would take 4 s), each with its own result.
 * Then a fiber cancelled in the middle of SELECT pg_sleep(10) gets an
 * error from libpq while another query on another connection completes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fiber-hook.h"
#include "tap_ok.h"

static const char *conninfo;

/* libpq and its name lookups use more stack than a fiber's default. */
static const fiber_attr_t big_stack = {.stack_size = 256 * 1024};

#define NQUERIES 20

static void *query_fiber(void *arg)
{
    int i = (int)(intptr_t)arg;
    PGconn *conn = PQconnectdb(conninfo);

    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "hook_pg: connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return fiber_fail(-EIO);
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT pg_sleep(0.2), %d * 2", i);
    PGresult *res = PQexec(conn, sql);
    char want[16];
    snprintf(want, sizeof(want), "%d", i * 2);
    int good = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
               strcmp(PQgetvalue(res, 0, 1), want) == 0;
    if (!good)
        fprintf(stderr, "hook_pg: query %d: %s", i, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    return good ? NULL : fiber_fail(-EPROTO);
}

static void queries_concurrently(void)
{
    double took;
    int bad = run_each_at_once(query_fiber, NQUERIES, &big_stack, &took);
    ok(bad == 0, "20 connections ran SELECT pg_sleep(0.2), i * 2 with the right "
       "results (%d failed)", bad);
    ok(took >= 0.2 && took < 1.0,
       "20 queries of 0.2 s took %.3f s of wall time (one after another: 4 s)", took);
}

struct cancelled {
    int status;           /* PQresultStatus, or -1 for no result */
    char error[160];
};

static void *long_query(void *arg)
{
    struct cancelled *x = arg;
    PGconn *conn = PQconnectdb(conninfo);

    x->status = -2;
    if (PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        return NULL;
    }
    PGresult *res = PQexec(conn, "SELECT pg_sleep(10)");
    x->status = res ? (int)PQresultStatus(res) : -1;
    snprintf(x->error, sizeof(x->error), "%s", PQerrorMessage(conn));
    char *nl = strchr(x->error, '\n');
    if (nl)
        *nl = '\0';
    PQclear(res);
    PQfinish(conn);
    return NULL;
}

static void cancel_in_query(void)
{
    struct cancelled x = {0};
    fiber_task_t *victim, *other;
    int ostatus = -1;

    fiber_spawn(&victim, long_query, &x, &big_stack);
    fiber_spawn(&other, query_fiber, (void *)(intptr_t)7, &big_stack);
    fiber_sleep(0.1);
    double t0 = wall();
    fiber_cancel(victim);
    fiber_await(victim, NULL, NULL);
    ok(x.status != PGRES_TUPLES_OK && x.status != -2 && wall() - t0 < 1.0,
       "a fiber cancelled in SELECT pg_sleep(10) gets an error from libpq at once "
       "(\"%s\")", x.error);
    fiber_await(other, NULL, &ostatus);
    ok(ostatus == 0, "a query on another connection meanwhile completed");
}

static void *run(void *arg)
{
    (void)arg;
    queries_concurrently();
    cancel_in_query();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hook_pg CONNINFO\n");
        return 2;
    }
    conninfo = argv[1];
    printf("1..5\n");
    ok(fiber_hook_installed() == 1, "libfiber-hook is linked ahead of libc");
    const fiber_options_t opts = {.clock = FIBER_CLOCK_REAL};
    int rc = fiber_run(run, NULL, &opts, NULL, NULL);
    if (rc != 0)
        printf("Bail out! fiber_run: %s\n", strerror(-rc));
    return failures || rc ? 1 : 0;
}
