// pgjdbc driver-compatibility checks for cutover.
//
// Usage: java -cp postgresql.jar:<classes> CutoverJdbcTest [host [port [user [dbname]]]]
// (missing values come from PGHOST, PGPORT, PGUSER, PGDATABASE).  Prints "ok <name>" or
// "FAIL <name>: ..." per check and exits 1 on any failure.  The printed lines must not depend on
// whether the server is reached directly or through cutover: run_client.py compares both runs.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.util.Arrays;
import java.util.Properties;

public final class CutoverJdbcTest {
  private static int failures = 0;

  /** One check: throws on failure with a message saying what differed. */
  private interface Check {
    void run(Connection conn) throws Exception;
  }

  private static final class CheckFailed extends Exception {
    private static final long serialVersionUID = 1L;

    CheckFailed(String message) {
      super(message);
    }
  }

  private static void require(boolean condition, String message) throws CheckFailed {
    if (!condition) {
      throw new CheckFailed(message);
    }
  }

  private static void runCheck(Connection conn, String name, Check check) {
    try {
      check.run(conn);
      System.out.println("ok " + name);
    } catch (Exception e) {
      failures++;
      String detail = e instanceof SQLException
          ? "SQLSTATE " + ((SQLException) e).getSQLState() + ": " + e.getMessage()
          : e.toString();
      System.out.println("FAIL " + name + ": " + detail.replace('\n', ' '));
    }
    System.out.flush();
  }

  private static String arg(String[] args, int index, String env, String fallback) {
    if (args.length > index) {
      return args[index];
    }
    String value = System.getenv(env);
    return value == null || value.isEmpty() ? fallback : value;
  }

  private static void exec(Connection conn, String sql) throws SQLException {
    try (Statement st = conn.createStatement()) {
      st.execute(sql);
    }
  }

  private static String queryString(Connection conn, String sql) throws SQLException {
    try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      if (!rs.next()) {
        return null;
      }
      return rs.getString(1);
    }
  }

  /**
   * One PreparedStatement executed 20 times: after prepareThreshold (5) pgjdbc switches to a
   * server-side named statement, so later executions are Bind/Execute on a statement parsed once.
   * Parameters of several types go in and come back out unchanged.
   */
  private static void namedStatementReuse(Connection conn) throws Exception {
    exec(conn, "DROP TABLE IF EXISTS cl_jdbc_types");
    exec(conn, "CREATE TABLE cl_jdbc_types (i int PRIMARY KEY, t text, ts timestamp, b bytea,"
        + " n numeric(30, 6))");
    String insert = "INSERT INTO cl_jdbc_types (i, t, ts, b, n) VALUES (?, ?, ?, ?, ?)";
    String select = "SELECT i, t, ts, b, n FROM cl_jdbc_types WHERE i = ?";
    try (PreparedStatement ins = conn.prepareStatement(insert);
         PreparedStatement sel = conn.prepareStatement(select)) {
      for (int i = 1; i <= 20; i++) {
        Timestamp ts = Timestamp.valueOf(
            java.time.LocalDateTime.of(2024, 2, 29, 12, 34, 56, 123456000).plusDays(i));
        byte[] bytes = new byte[] {0, (byte) i, (byte) 0xff, 0x5c, 0x27};
        BigDecimal n = new BigDecimal("12345678901234.000001").multiply(BigDecimal.valueOf(i));
        String text = i % 4 == 0 ? null : "text 'quoted' \\ ünïcödé " + i;
        ins.setInt(1, i);
        if (text == null) {
          ins.setNull(2, Types.VARCHAR);
        } else {
          ins.setString(2, text);
        }
        ins.setTimestamp(3, ts);
        ins.setBytes(4, bytes);
        ins.setBigDecimal(5, n);
        require(ins.executeUpdate() == 1, "insert " + i + " did not affect one row");

        sel.setInt(1, i);
        try (ResultSet rs = sel.executeQuery()) {
          require(rs.next(), "select " + i + " returned no row");
          require(rs.getInt(1) == i, "int " + i + " came back as " + rs.getInt(1));
          require(text == null ? rs.getString(2) == null : text.equals(rs.getString(2)),
              "text " + i + " came back as " + rs.getString(2));
          require(ts.equals(rs.getTimestamp(3)),
              "timestamp " + i + " came back as " + rs.getTimestamp(3));
          require(Arrays.equals(bytes, rs.getBytes(4)), "bytea " + i + " differs");
          require(n.compareTo(rs.getBigDecimal(5)) == 0,
              "numeric " + i + " came back as " + rs.getBigDecimal(5));
          require(!rs.next(), "select " + i + " returned more than one row");
        }
      }
      // Both statements must by now be named server-side statements of this session.
      long serverSide = Long.parseLong(queryString(conn,
          "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%cl_jdbc_types%'"));
      require(serverSide >= 2,
          "expected the insert and select as server-side prepared statements, found "
              + serverSide);
      require(ins.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare(),
          "pgjdbc did not switch the insert to a server-side statement");
    }
    require("20".equals(queryString(conn, "SELECT count(*) FROM cl_jdbc_types")),
        "table does not hold 20 rows");
  }

  /** addBatch/executeBatch of 1000 rows through one PreparedStatement. */
  private static void batchInsert(Connection conn) throws Exception {
    exec(conn, "DROP TABLE IF EXISTS cl_jdbc_batch");
    exec(conn, "CREATE TABLE cl_jdbc_batch (id int PRIMARY KEY, note text)");
    try (PreparedStatement ps =
             conn.prepareStatement("INSERT INTO cl_jdbc_batch (id, note) VALUES (?, ?)")) {
      for (int i = 1; i <= 1000; i++) {
        ps.setInt(1, i);
        ps.setString(2, "batch row " + i);
        ps.addBatch();
      }
      int[] counts = ps.executeBatch();
      require(counts.length == 1000, "executeBatch returned " + counts.length + " counts");
      for (int i = 0; i < counts.length; i++) {
        require(counts[i] == 1 || counts[i] == Statement.SUCCESS_NO_INFO,
            "batch entry " + i + " count " + counts[i]);
      }
    }
    require("1000:500500".equals(
        queryString(conn, "SELECT count(*) || ':' || sum(id) FROM cl_jdbc_batch")),
        "table does not hold rows 1..1000");
  }

  /** Explicit transactions: a rolled-back insert leaves nothing, a committed one stays. */
  private static void transactionRollback(Connection conn) throws Exception {
    exec(conn, "DROP TABLE IF EXISTS cl_jdbc_tx");
    exec(conn, "CREATE TABLE cl_jdbc_tx (id int PRIMARY KEY)");
    conn.setAutoCommit(false);
    try {
      exec(conn, "INSERT INTO cl_jdbc_tx VALUES (1), (2)");
      require("2".equals(queryString(conn, "SELECT count(*) FROM cl_jdbc_tx")),
          "insert not visible inside its transaction");
      conn.rollback();
      require("0".equals(queryString(conn, "SELECT count(*) FROM cl_jdbc_tx")),
          "rolled-back rows are visible");
      conn.rollback();
      exec(conn, "INSERT INTO cl_jdbc_tx VALUES (3)");
      conn.commit();
    } finally {
      conn.setAutoCommit(true);
    }
    require("3".equals(queryString(conn, "SELECT string_agg(id::text, ',') FROM cl_jdbc_tx")),
        "committed row missing");
  }

  /**
   * setFetchSize(50) inside a transaction: pgjdbc sends Execute with a 50-row limit and the
   * server answers PortalSuspended until the 1000 rows are exhausted.
   */
  private static void fetchSizePortal(Connection conn) throws Exception {
    conn.setAutoCommit(false);
    try (PreparedStatement ps = conn.prepareStatement(
             "SELECT g, repeat('x', g % 17) FROM generate_series(1, ?) AS g ORDER BY g")) {
      ps.setFetchSize(50);
      ps.setInt(1, 1000);
      long rows = 0;
      long sum = 0;
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          rows++;
          sum += rs.getInt(1);
          require(rs.getInt(1) == rows, "row " + rows + " holds " + rs.getInt(1));
          require(rs.getString(2).length() == rs.getInt(1) % 17, "row " + rows + " text length");
          // Another statement between fetches on the same connection and transaction.
          if (rows == 75) {
            require("ok".equals(queryString(conn, "SELECT 'ok'")), "statement between fetches");
          }
        }
      }
      require(rows == 1000 && sum == 500500, "fetched " + rows + " rows summing to " + sum);
      conn.commit();
    } finally {
      conn.setAutoCommit(true);
    }
  }

  /** An error, then a successful statement on the same connection; same inside a transaction. */
  private static void errorThenSuccess(Connection conn) throws Exception {
    try (PreparedStatement ps = conn.prepareStatement("SELECT 10 / ?")) {
      ps.setInt(1, 0);
      try {
        ps.executeQuery().close();
        throw new CheckFailed("division by zero did not fail");
      } catch (SQLException e) {
        require("22012".equals(e.getSQLState()), "division by zero SQLSTATE " + e.getSQLState());
      }
      ps.setInt(1, 5);
      try (ResultSet rs = ps.executeQuery()) {
        require(rs.next() && rs.getInt(1) == 2, "statement after the error");
      }
    }
    try {
      exec(conn, "SELECT * FROM cl_jdbc_no_such_table");
      throw new CheckFailed("missing table did not fail");
    } catch (SQLException e) {
      require("42P01".equals(e.getSQLState()), "missing table SQLSTATE " + e.getSQLState());
    }
    require("1".equals(queryString(conn, "SELECT 1")), "simple statement after the error");

    conn.setAutoCommit(false);
    try {
      exec(conn, "SELECT 1");
      try {
        exec(conn, "SELECT 1 / 0");
        throw new CheckFailed("division by zero in transaction did not fail");
      } catch (SQLException e) {
        require("22012".equals(e.getSQLState()), "in-transaction SQLSTATE " + e.getSQLState());
      }
      try {
        exec(conn, "SELECT 1");
        throw new CheckFailed("statement in aborted transaction did not fail");
      } catch (SQLException e) {
        require("25P02".equals(e.getSQLState()), "aborted transaction SQLSTATE " + e.getSQLState());
      }
      conn.rollback();
      require("2".equals(queryString(conn, "SELECT 2")), "statement after rollback");
      conn.commit();
    } finally {
      conn.setAutoCommit(true);
    }
  }

  /** DatabaseMetaData (catalog queries issued by the driver) and ResultSetMetaData. */
  private static void metadata(Connection conn) throws Exception {
    DatabaseMetaData md = conn.getMetaData();
    require("PostgreSQL".equals(md.getDatabaseProductName()),
        "product name " + md.getDatabaseProductName());
    require(md.getDatabaseMajorVersion() >= 10, "major version " + md.getDatabaseMajorVersion());
    try (ResultSet rs = md.getTables(null, "public", "cl_jdbc_batch", new String[] {"TABLE"})) {
      require(rs.next(), "getTables does not list cl_jdbc_batch");
      require("cl_jdbc_batch".equals(rs.getString("TABLE_NAME")), "getTables name");
    }
    try (ResultSet rs = md.getColumns(null, "public", "cl_jdbc_types", null)) {
      StringBuilder cols = new StringBuilder();
      while (rs.next()) {
        cols.append(rs.getString("COLUMN_NAME")).append(':').append(rs.getString("TYPE_NAME"))
            .append(' ');
      }
      require("i:int4 t:text ts:timestamp b:bytea n:numeric ".equals(cols.toString()),
          "getColumns gave " + cols);
    }
    try (ResultSet rs = md.getPrimaryKeys(null, "public", "cl_jdbc_batch")) {
      require(rs.next() && "id".equals(rs.getString("COLUMN_NAME")), "getPrimaryKeys");
    }
    try (PreparedStatement ps = conn.prepareStatement(
             "SELECT i, t, ts, b, n FROM cl_jdbc_types WHERE i = ?")) {
      ResultSetMetaData rmd = ps.getMetaData(); // Describe before any execution
      require(rmd != null && rmd.getColumnCount() == 5, "prepared statement metadata");
      require(rmd.getColumnType(1) == Types.INTEGER && rmd.getColumnType(4) == Types.BINARY
              && rmd.getColumnType(5) == Types.NUMERIC,
          "column types " + rmd.getColumnTypeName(1) + "," + rmd.getColumnTypeName(4) + ","
              + rmd.getColumnTypeName(5));
      require("cl_jdbc_types".equals(rmd.getTableName(2)), "table name " + rmd.getTableName(2));
      require(ps.getParameterMetaData().getParameterCount() == 1, "parameter count");
    }
  }

  public static void main(String[] args) throws Exception {
    String host = arg(args, 0, "PGHOST", "127.0.0.1");
    String port = arg(args, 1, "PGPORT", "5432");
    String user = arg(args, 2, "PGUSER", System.getProperty("user.name"));
    String db = arg(args, 3, "PGDATABASE", user);
    String url = "jdbc:postgresql://" + host + ":" + port + "/" + db;
    Properties props = new Properties();
    props.setProperty("user", user);
    props.setProperty("sslmode", "disable");
    props.setProperty("prepareThreshold", "5");
    props.setProperty("ApplicationName", "cutover-clients-jdbc");
    props.setProperty("socketTimeout", "60");

    Connection conn;
    try {
      conn = DriverManager.getConnection(url, props);
      System.out.println("ok connect");
    } catch (SQLException e) {
      System.out.println("FAIL connect: " + e.getMessage());
      System.exit(1);
      return;
    }
    try (Connection c = conn) {
      exec(c, "SET client_min_messages = warning");
      runCheck(c, "named_statement_reuse_types", CutoverJdbcTest::namedStatementReuse);
      runCheck(c, "batch_insert_1000", CutoverJdbcTest::batchInsert);
      runCheck(c, "transaction_rollback", CutoverJdbcTest::transactionRollback);
      runCheck(c, "fetch_size_portal_suspension", CutoverJdbcTest::fetchSizePortal);
      runCheck(c, "error_then_success", CutoverJdbcTest::errorThenSuccess);
      runCheck(c, "metadata", CutoverJdbcTest::metadata);
    }
    System.exit(failures == 0 ? 0 : 1);
  }
}
