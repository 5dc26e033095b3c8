/*
 * libpq driver-compatibility checks: pipeline mode (PostgreSQL 14+ libpq), named prepared
 * statements, Flush requests and multi-statement simple queries.
 *
 * Usage: libpq_pipeline [host [port [user [dbname]]]]   (missing values come from PGHOST,
 * PGPORT, PGUSER, PGDATABASE as libpq reads them).  Prints "ok <name>" or "FAIL <name>: ..."
 * per check, exits 1 on any failure.  Output must not depend on the server reached (direct or
 * through cutover): run_client.py compares the two runs line by line.
 *
 * Every wait for the server is bounded (RESULT_TIMEOUT_S) so that a proxy which holds back
 * replies turns into a FAIL line instead of a hung test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#define RESULT_TIMEOUT_S 30

static int g_failures;

static void report_ok(const char *check) { printf("ok %s\n", check); fflush(stdout); }

static void report_fail(const char *check, const char *fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  /* libpq's messages end in newlines and may span lines: keep one line per check. */
  for (char *p = text; *p; p++)
    if (*p == '\n') *p = ' ';
  size_t len = strlen(text);
  while (len > 0 && text[len - 1] == ' ') text[--len] = '\0';
  printf("FAIL %s: %s\n", check, text);
  fflush(stdout);
  g_failures++;
}

/* Waits until PQgetResult will not block, then returns its result; *timed_out is set when the
 * server did not answer in time (the connection is then unusable for further checks). */
static PGresult *get_result(PGconn *conn, int *timed_out) {
  *timed_out = 0;
  while (PQisBusy(conn)) {
    if (PQflush(conn) < 0) return NULL;
    int sock = PQsocket(conn);
    if (sock < 0) return NULL;
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(sock, &rd);
    struct timeval tv = {RESULT_TIMEOUT_S, 0};
    int n = select(sock + 1, &rd, NULL, NULL, &tv);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      *timed_out = 1;
      return NULL;
    }
    if (n < 0 || !PQconsumeInput(conn)) return NULL;
  }
  return PQgetResult(conn);
}

/* Fetches the next result and checks its status.  On mismatch reports the failure and returns
 * NULL; the caller owns a non-NULL result. */
static PGresult *expect_result(PGconn *conn, const char *check, const char *what,
                               ExecStatusType want) {
  int timed_out;
  PGresult *res = get_result(conn, &timed_out);
  if (timed_out) {
    report_fail(check, "%s: no reply within %d s", what, RESULT_TIMEOUT_S);
    return NULL;
  }
  if (res == NULL) {
    report_fail(check, "%s: got no result, want %s (%s)", what, PQresStatus(want),
                PQerrorMessage(conn));
    return NULL;
  }
  if (PQresultStatus(res) != want) {
    report_fail(check, "%s: got %s, want %s: %s", what, PQresStatus(PQresultStatus(res)),
                PQresStatus(want), PQresultErrorMessage(res));
    PQclear(res);
    return NULL;
  }
  return res;
}

/* After the last result of one query PQgetResult returns NULL (not in pipeline mode for Sync). */
static int expect_end_of_query(PGconn *conn, const char *check, const char *what) {
  int timed_out;
  PGresult *res = get_result(conn, &timed_out);
  if (timed_out) {
    report_fail(check, "%s: no end of query within %d s", what, RESULT_TIMEOUT_S);
    return 0;
  }
  if (res != NULL) {
    report_fail(check, "%s: unexpected extra result %s", what, PQresStatus(PQresultStatus(res)));
    PQclear(res);
    return 0;
  }
  return 1;
}

/* Expects exactly one result of status `want` followed by the end-of-query NULL. */
static int expect_single(PGconn *conn, const char *check, const char *what, ExecStatusType want) {
  PGresult *res = expect_result(conn, check, what, want);
  if (res == NULL) return 0;
  PQclear(res);
  return expect_end_of_query(conn, check, what);
}

/* Runs a simple-protocol statement outside pipeline mode; 1 on success. */
static int run(PGconn *conn, const char *check, const char *sql) {
  if (!PQsendQuery(conn, sql)) {
    report_fail(check, "send '%s': %s", sql, PQerrorMessage(conn));
    return 0;
  }
  int timed_out, good = 1, any = 0;
  PGresult *res;
  while ((res = get_result(conn, &timed_out)) != NULL) {
    any = 1;
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      report_fail(check, "'%s': %s", sql, PQresultErrorMessage(res));
      good = 0;
    }
    PQclear(res);
  }
  if (timed_out) {
    report_fail(check, "'%s': no reply within %d s", sql, RESULT_TIMEOUT_S);
    return 0;
  }
  if (!any) {
    report_fail(check, "'%s': no result: %s", sql, PQerrorMessage(conn));
    return 0;
  }
  return good;
}

/* Runs a one-row one-column query outside pipeline mode and compares its text value. */
static int expect_value(PGconn *conn, const char *check, const char *sql, const char *want) {
  if (!PQsendQuery(conn, sql)) {
    report_fail(check, "send '%s': %s", sql, PQerrorMessage(conn));
    return 0;
  }
  PGresult *res = expect_result(conn, check, sql, PGRES_TUPLES_OK);
  if (res == NULL) return 0;
  int good = 1;
  if (PQntuples(res) != 1 || PQnfields(res) != 1) {
    report_fail(check, "'%s': %d rows x %d columns, want 1x1", sql, PQntuples(res),
                PQnfields(res));
    good = 0;
  } else if (strcmp(PQgetvalue(res, 0, 0), want) != 0) {
    report_fail(check, "'%s' = '%s', want '%s'", sql, PQgetvalue(res, 0, 0), want);
    good = 0;
  }
  PQclear(res);
  return expect_end_of_query(conn, check, sql) && good;
}

static int enter_pipeline(PGconn *conn, const char *check) {
  if (!PQenterPipelineMode(conn)) {
    report_fail(check, "PQenterPipelineMode: %s", PQerrorMessage(conn));
    return 0;
  }
  return 1;
}

static int exit_pipeline(PGconn *conn, const char *check) {
  if (!PQexitPipelineMode(conn)) {
    report_fail(check, "PQexitPipelineMode: %s", PQerrorMessage(conn));
    return 0;
  }
  return 1;
}

static int send_sync(PGconn *conn, const char *check) {
  if (!PQpipelineSync(conn)) {
    report_fail(check, "PQpipelineSync: %s", PQerrorMessage(conn));
    return 0;
  }
  return 1;
}

static int expect_sync(PGconn *conn, const char *check, const char *what) {
  PGresult *res = expect_result(conn, check, what, PGRES_PIPELINE_SYNC);
  if (res == NULL) return 0;
  PQclear(res);
  return 1;
}

/* Sends "INSERT INTO table (id, note) VALUES ($1, $2)" with text parameters. */
static int send_insert(PGconn *conn, const char *check, const char *table, int id,
                       const char *note) {
  char sql[128], idbuf[16];
  snprintf(sql, sizeof sql, "INSERT INTO %s (id, note) VALUES ($1, $2)", table);
  snprintf(idbuf, sizeof idbuf, "%d", id);
  const char *values[2] = {idbuf, note};
  if (!PQsendQueryParams(conn, sql, 2, NULL, values, NULL, NULL, 0)) {
    report_fail(check, "PQsendQueryParams #%d: %s", id, PQerrorMessage(conn));
    return 0;
  }
  return 1;
}

static int expect_insert_done(PGconn *conn, const char *check, int id) {
  char what[32];
  snprintf(what, sizeof what, "insert #%d", id);
  PGresult *res = expect_result(conn, check, what, PGRES_COMMAND_OK);
  if (res == NULL) return 0;
  int good = strcmp(PQcmdTuples(res), "1") == 0;
  if (!good) report_fail(check, "%s: %s rows affected, want 1", what, PQcmdTuples(res));
  PQclear(res);
  return good && expect_end_of_query(conn, check, what);
}

static int create_table(PGconn *conn, const char *check, const char *table) {
  char sql[192];
  snprintf(sql, sizeof sql,
           "DROP TABLE IF EXISTS %s; CREATE TABLE %s (id int PRIMARY KEY, note text)", table,
           table);
  return run(conn, check, sql);
}

/* (a) 100 parameterised INSERTs and one Sync in a single pipeline; results read in order. */
static void check_pipeline_inserts(PGconn *conn) {
  const char *check = "pipeline_100_inserts";
  enum { kRows = 100 };
  if (!create_table(conn, check, "cl_libpq_pipe")) return;
  if (!enter_pipeline(conn, check)) return;
  for (int i = 1; i <= kRows; i++) {
    char note[32];
    snprintf(note, sizeof note, "row %d", i);
    if (!send_insert(conn, check, "cl_libpq_pipe", i, note)) return;
  }
  if (!send_sync(conn, check)) return;
  for (int i = 1; i <= kRows; i++)
    if (!expect_insert_done(conn, check, i)) return;
  if (!expect_sync(conn, check, "sync")) return;
  if (!exit_pipeline(conn, check)) return;
  if (!expect_value(conn, check, "SELECT count(*) || ':' || sum(id) FROM cl_libpq_pipe",
                    "100:5050"))
    return;
  report_ok(check);
}

/* (b) Statement 4 of 6 fails: 5 and 6 are PIPELINE_ABORTED, the Sync ends the aborted implicit
 * transaction (so 1-3 are rolled back too), and the next batch works normally. */
static void check_pipeline_error(PGconn *conn) {
  const char *check = "pipeline_error_mid_batch";
  if (!create_table(conn, check, "cl_libpq_abort")) return;
  if (!enter_pipeline(conn, check)) return;
  for (int i = 1; i <= 3; i++)
    if (!send_insert(conn, check, "cl_libpq_abort", i, "before error")) return;
  const char *zero[1] = {"0"};
  if (!PQsendQueryParams(conn, "SELECT 1 / $1::int", 1, NULL, zero, NULL, NULL, 0)) {
    report_fail(check, "send division: %s", PQerrorMessage(conn));
    return;
  }
  for (int i = 5; i <= 6; i++)
    if (!send_insert(conn, check, "cl_libpq_abort", i, "after error")) return;
  if (!send_sync(conn, check)) return;

  for (int i = 1; i <= 3; i++)
    if (!expect_insert_done(conn, check, i)) return;
  PGresult *res = expect_result(conn, check, "statement 4", PGRES_FATAL_ERROR);
  if (res == NULL) return;
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  if (state == NULL || strcmp(state, "22012") != 0) {
    report_fail(check, "statement 4: SQLSTATE %s, want 22012", state ? state : "(none)");
    PQclear(res);
    return;
  }
  PQclear(res);
  if (!expect_end_of_query(conn, check, "statement 4")) return;
  if (PQpipelineStatus(conn) != PQ_PIPELINE_ABORTED) {
    report_fail(check, "pipeline status after error is %d, want PQ_PIPELINE_ABORTED",
                (int)PQpipelineStatus(conn));
    return;
  }
  for (int i = 5; i <= 6; i++) {
    char what[32];
    snprintf(what, sizeof what, "statement %d", i);
    if (!expect_single(conn, check, what, PGRES_PIPELINE_ABORTED)) return;
  }
  if (!expect_sync(conn, check, "sync after error")) return;
  if (PQpipelineStatus(conn) != PQ_PIPELINE_ON) {
    report_fail(check, "pipeline status after sync is %d, want PQ_PIPELINE_ON",
                (int)PQpipelineStatus(conn));
    return;
  }

  /* A new batch after the Sync succeeds. */
  for (int i = 7; i <= 8; i++)
    if (!send_insert(conn, check, "cl_libpq_abort", i, "next batch")) return;
  if (!send_sync(conn, check)) return;
  for (int i = 7; i <= 8; i++)
    if (!expect_insert_done(conn, check, i)) return;
  if (!expect_sync(conn, check, "sync of next batch")) return;
  if (!exit_pipeline(conn, check)) return;
  if (!expect_value(conn, check, "SELECT string_agg(id::text, ',' ORDER BY id) FROM cl_libpq_abort",
                    "7,8"))
    return;
  report_ok(check);
}

/* Three Sync-delimited segments sent before reading anything; the middle one fails.  Each
 * segment is its own implicit transaction: segments 1 and 3 commit, segment 2 does not. */
static void check_pipeline_segments(PGconn *conn) {
  const char *check = "pipeline_three_syncs_middle_fails";
  if (!create_table(conn, check, "cl_libpq_segments")) return;
  if (!enter_pipeline(conn, check)) return;
  if (!send_insert(conn, check, "cl_libpq_segments", 1, "segment 1")) return;
  if (!send_sync(conn, check)) return;
  if (!send_insert(conn, check, "cl_libpq_segments", 2, "segment 2")) return;
  if (!send_insert(conn, check, "cl_libpq_segments", 2, "duplicate key")) return;
  if (!send_sync(conn, check)) return;
  if (!send_insert(conn, check, "cl_libpq_segments", 3, "segment 3")) return;
  if (!send_sync(conn, check)) return;

  if (!expect_insert_done(conn, check, 1) || !expect_sync(conn, check, "sync 1")) return;
  if (!expect_insert_done(conn, check, 2)) return;
  PGresult *res = expect_result(conn, check, "duplicate insert", PGRES_FATAL_ERROR);
  if (res == NULL) return;
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  int unique_violation = state != NULL && strcmp(state, "23505") == 0;
  PQclear(res);
  if (!unique_violation) {
    report_fail(check, "duplicate insert: SQLSTATE %s, want 23505", state ? state : "(none)");
    return;
  }
  if (!expect_end_of_query(conn, check, "duplicate insert")) return;
  if (!expect_sync(conn, check, "sync 2")) return;
  if (!expect_insert_done(conn, check, 3) || !expect_sync(conn, check, "sync 3")) return;
  if (!exit_pipeline(conn, check)) return;
  if (!expect_value(conn, check,
                    "SELECT string_agg(id::text, ',' ORDER BY id) FROM cl_libpq_segments", "1,3"))
    return;
  report_ok(check);
}

/* (c) PQsendPrepare once, PQsendQueryPrepared many times in one pipeline, then the same named
 * statement again in a second pipeline, with text and binary result formats. */
static void check_pipeline_prepared(PGconn *conn) {
  const char *check = "pipeline_named_prepared";
  enum { kExecutions = 200 };
  if (!create_table(conn, check, "cl_libpq_prepared")) return;
  if (!run(conn, check, "DEALLOCATE ALL")) return;
  if (!enter_pipeline(conn, check)) return;
  if (!PQsendPrepare(conn, "cl_ins",
                     "INSERT INTO cl_libpq_prepared (id, note) VALUES ($1, $2) RETURNING id * 2",
                     2, NULL)) {
    report_fail(check, "PQsendPrepare: %s", PQerrorMessage(conn));
    return;
  }
  for (int i = 1; i <= kExecutions; i++) {
    char idbuf[16];
    snprintf(idbuf, sizeof idbuf, "%d", i);
    const char *values[2] = {idbuf, i % 2 ? "odd" : NULL};
    /* Every tenth execution asks for binary results (int4 in network order). */
    if (!PQsendQueryPrepared(conn, "cl_ins", 2, values, NULL, NULL, i % 10 == 0)) {
      report_fail(check, "PQsendQueryPrepared #%d: %s", i, PQerrorMessage(conn));
      return;
    }
  }
  if (!send_sync(conn, check)) return;
  if (!expect_single(conn, check, "prepare", PGRES_COMMAND_OK)) return;
  for (int i = 1; i <= kExecutions; i++) {
    char what[32];
    snprintf(what, sizeof what, "execution #%d", i);
    PGresult *res = expect_result(conn, check, what, PGRES_TUPLES_OK);
    if (res == NULL) return;
    int got = -1;
    if (PQntuples(res) == 1 && PQfformat(res, 0) == (i % 10 == 0)) {
      if (PQfformat(res, 0) == 1 && PQgetlength(res, 0, 0) == 4) {
        uint32_t be;
        memcpy(&be, PQgetvalue(res, 0, 0), 4);
        got = (int)ntohl(be);
      } else if (PQfformat(res, 0) == 0) {
        got = atoi(PQgetvalue(res, 0, 0));
      }
    }
    PQclear(res);
    if (got != 2 * i) {
      report_fail(check, "%s returned %d, want %d", what, got, 2 * i);
      return;
    }
    if (!expect_end_of_query(conn, check, what)) return;
  }
  if (!expect_sync(conn, check, "sync")) return;

  /* The named statement outlives the Sync. */
  const char *values[2] = {"1000", "second pipeline"};
  if (!PQsendQueryPrepared(conn, "cl_ins", 2, values, NULL, NULL, 0)) {
    report_fail(check, "PQsendQueryPrepared after sync: %s", PQerrorMessage(conn));
    return;
  }
  if (!PQsendDescribePrepared(conn, "cl_ins")) {
    report_fail(check, "PQsendDescribePrepared: %s", PQerrorMessage(conn));
    return;
  }
  if (!send_sync(conn, check)) return;
  if (!expect_single(conn, check, "execution after sync", PGRES_TUPLES_OK)) return;
  PGresult *desc = expect_result(conn, check, "describe", PGRES_COMMAND_OK);
  if (desc == NULL) return;
  int nparams = PQnparams(desc), nfields = PQnfields(desc);
  PQclear(desc);
  if (nparams != 2 || nfields != 1) {
    report_fail(check, "describe: %d params %d fields, want 2 and 1", nparams, nfields);
    return;
  }
  if (!expect_end_of_query(conn, check, "describe")) return;
  if (!expect_sync(conn, check, "second sync")) return;
  if (!exit_pipeline(conn, check)) return;
  if (!expect_value(conn, check,
                    "SELECT count(*) || ':' || count(note) || ':' || sum(id) FROM cl_libpq_prepared",
                    "201:101:21100"))
    return;
  report_ok(check);
}

/* A Flush request (no Sync) must make the server's replies reach the client: a proxy that waits
 * for Sync before forwarding would time out here. */
static void check_pipeline_flush_request(PGconn *conn) {
  const char *check = "pipeline_flush_request";
  if (!enter_pipeline(conn, check)) return;
  const char *values[1] = {"41"};
  if (!PQsendQueryParams(conn, "SELECT $1::int + 1", 1, NULL, values, NULL, NULL, 0) ||
      !PQsendFlushRequest(conn) || PQflush(conn) != 0) {
    report_fail(check, "send: %s", PQerrorMessage(conn));
    return;
  }
  PGresult *res = expect_result(conn, check, "result before sync", PGRES_TUPLES_OK);
  if (res == NULL) return;
  int good = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "42") == 0;
  PQclear(res);
  if (!good) {
    report_fail(check, "result before sync is not 42");
    return;
  }
  if (!expect_end_of_query(conn, check, "result before sync")) return;
  if (!send_sync(conn, check) || !expect_sync(conn, check, "sync")) return;
  if (!exit_pipeline(conn, check)) return;
  report_ok(check);
}

/* (e) Outside pipeline mode, one simple Query with several statements gives one result each. */
static void check_multi_statement(PGconn *conn) {
  const char *check = "simple_query_multi_statement";
  if (!create_table(conn, check, "cl_libpq_multi")) return;
  if (!PQsendQuery(conn,
                   "SELECT 1 AS one; SELECT 'two' AS word, 2 AS n;"
                   " INSERT INTO cl_libpq_multi VALUES (1, 'a'), (2, 'b');"
                   " SELECT id, note FROM cl_libpq_multi ORDER BY id")) {
    report_fail(check, "PQsendQuery: %s", PQerrorMessage(conn));
    return;
  }
  PGresult *res = expect_result(conn, check, "statement 1", PGRES_TUPLES_OK);
  if (res == NULL) return;
  int good = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "1") == 0 &&
             strcmp(PQfname(res, 0), "one") == 0;
  PQclear(res);
  if (!good) {
    report_fail(check, "statement 1 did not return one=1");
    return;
  }
  res = expect_result(conn, check, "statement 2", PGRES_TUPLES_OK);
  if (res == NULL) return;
  good = PQnfields(res) == 2 && strcmp(PQgetvalue(res, 0, 0), "two") == 0 &&
         strcmp(PQgetvalue(res, 0, 1), "2") == 0;
  PQclear(res);
  if (!good) {
    report_fail(check, "statement 2 did not return ('two', 2)");
    return;
  }
  res = expect_result(conn, check, "statement 3", PGRES_COMMAND_OK);
  if (res == NULL) return;
  good = strcmp(PQcmdStatus(res), "INSERT 0 2") == 0;
  if (!good) report_fail(check, "statement 3 tag '%s', want 'INSERT 0 2'", PQcmdStatus(res));
  PQclear(res);
  if (!good) return;
  res = expect_result(conn, check, "statement 4", PGRES_TUPLES_OK);
  if (res == NULL) return;
  good = PQntuples(res) == 2 && strcmp(PQgetvalue(res, 1, 1), "b") == 0;
  PQclear(res);
  if (!good) {
    report_fail(check, "statement 4 did not return the two inserted rows");
    return;
  }
  if (!expect_end_of_query(conn, check, "multi-statement query")) return;

  /* An error stops the rest of the string, and the whole string was one implicit transaction. */
  if (!PQsendQuery(conn,
                   "INSERT INTO cl_libpq_multi VALUES (3, 'c'); SELECT 1 / 0;"
                   " INSERT INTO cl_libpq_multi VALUES (4, 'd')")) {
    report_fail(check, "PQsendQuery with error: %s", PQerrorMessage(conn));
    return;
  }
  res = expect_result(conn, check, "insert before error", PGRES_COMMAND_OK);
  if (res == NULL) return;
  PQclear(res);
  res = expect_result(conn, check, "division by zero", PGRES_FATAL_ERROR);
  if (res == NULL) return;
  PQclear(res);
  if (!expect_end_of_query(conn, check, "query with error")) return;
  if (!expect_value(conn, check,
                    "SELECT string_agg(id::text, ',' ORDER BY id) FROM cl_libpq_multi", "1,2"))
    return;
  report_ok(check);
}

int main(int argc, char **argv) {
  const char *keywords[] = {"host", "port", "user", "dbname", "application_name", NULL};
  const char *values[] = {argc > 1 ? argv[1] : NULL, argc > 2 ? argv[2] : NULL,
                          argc > 3 ? argv[3] : NULL, argc > 4 ? argv[4] : NULL,
                          "cutover-clients-libpq", NULL};
  PGconn *conn = PQconnectdbParams(keywords, values, 1);
  if (PQstatus(conn) != CONNECTION_OK) {
    report_fail("connect", "%s", PQerrorMessage(conn));
    PQfinish(conn);
    return 1;
  }
  report_ok("connect");
  /* DROP TABLE IF EXISTS notices would go to stderr; keep the output quiet. */
  run(conn, "setup", "SET client_min_messages = warning");

  check_pipeline_inserts(conn);
  if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF) goto done; /* left mid-pipeline: stop */
  check_pipeline_error(conn);
  if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF) goto done;
  check_pipeline_segments(conn);
  if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF) goto done;
  check_pipeline_prepared(conn);
  if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF) goto done;
  check_pipeline_flush_request(conn);
  if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF) goto done;
  check_multi_statement(conn);

done:
  if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF)
    report_fail("remaining_checks", "skipped: an earlier check left the pipeline unfinished");
  PQfinish(conn);
  return g_failures ? 1 : 0;
}
