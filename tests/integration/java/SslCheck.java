// pgjdbc over TLS for test_front_door.py: verify-full against the test CA, SCRAM credentials.
//
// Usage: java -cp postgresql.jar:<classes> SslCheck <host> <port> <user> <password> <root cert>
// Prints "ssl=<true|false> user=<current_user> one=<SELECT 1>" and exits 0, or prints
// "ERROR <SQLSTATE> <message>" and exits 1.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public final class SslCheck {
  private SslCheck() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: SslCheck host port user password rootcert");
      System.exit(2);
    }
    String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/postgres";
    Properties props = new Properties();
    props.setProperty("user", args[2]);
    props.setProperty("password", args[3]);
    props.setProperty("ssl", "true");
    props.setProperty("sslmode", "verify-full");
    props.setProperty("sslrootcert", args[4]);
    props.setProperty("connectTimeout", "10");
    try (Connection conn = DriverManager.getConnection(url, props);
         Statement st = conn.createStatement();
         ResultSet rs = st.executeQuery(
             "SELECT 1, current_user, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())")) {
      rs.next();
      System.out.println("ssl=" + rs.getBoolean(3) + " user=" + rs.getString(2) + " one=" + rs.getInt(1));
    } catch (SQLException e) {
      System.out.println("ERROR " + e.getSQLState() + " " + e.getMessage());
      System.exit(1);
    }
  }
}
