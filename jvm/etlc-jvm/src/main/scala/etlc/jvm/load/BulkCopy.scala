package etlc.jvm.load

import java.sql.{Connection, Driver, SQLException}
import java.util.Properties

import scala.jdk.CollectionConverters._

import org.apache.spark.api.java.function.ForeachPartitionFunction
import org.apache.spark.etlc.TaskOutput
import org.apache.spark.sql.{DataFrame, Row}
import org.postgresql.PGConnection

/** A staging table filled through the database's bulk path instead of batched INSERTs:
  * PostgreSQL's `COPY ... FROM STDIN` (the driver's CopyManager) and MySQL's `LOAD DATA LOCAL
  * INFILE` from a stream. The rows go as CSV ([[CsvRows]]), produced while they are sent.
  *
  * Each partition is one statement in one transaction on its own connection, as the JDBC
  * writer's tasks are: a task killed mid-copy leaves nothing behind, so the task Spark runs
  * again cannot double its rows. The table and column names arrive quoted by etlc's one
  * quoting path (`etlc.database_sql`); nothing here quotes or checks them again.
  */
object BulkCopy {

  /** Whether `system`'s bulk path can take every column of `df`. */
  def copyable(df: DataFrame, system: String): Boolean = CsvType.of(df.schema, dialect(system)).isDefined

  /** Every partition of `df` into `table`'s `columns` (in `df`'s column order; a list, as
    * py4j hands Python's over). */
  def copy(df: DataFrame, system: String, url: String, properties: Properties, table: String, columns: java.util.List[String]): Unit = {
    val csv = dialect(system)
    val types = CsvType.of(df.schema, csv).getOrElse(
      throw new IllegalArgumentException(s"$system's bulk path cannot take ${df.schema.simpleString}")
    )
    val into = columns.asScala.mkString(", ")
    val load: (Connection, CsvRows) => Unit = system match {
      case "postgres" =>
        val statement = s"COPY $table ($into) FROM STDIN WITH (FORMAT csv)"
        (connection, rows) => connection.unwrap(classOf[PGConnection]).getCopyAPI.copyIn(statement, rows, 1 << 16)
      case _ =>
        // The line end is a real line feed in the statement, not `\n`: a server whose
        // sql_mode has NO_BACKSLASH_ESCAPES would read that as two characters.
        val statement = s"LOAD DATA LOCAL INFILE 'etlc-rows.csv' INTO TABLE $table CHARACTER SET utf8mb4 " +
          "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\n' " +
          s"($into)"
        (connection, rows) => loadData(connection, statement, rows)
    }
    // A Dataset action, as Spark's JDBC writer uses: the plan's observed metrics (the load's
    // counts) are reported when it ends, which an RDD action's are not.
    df.foreachPartition(new ForeachPartitionFunction[Row] {
      override def call(rows: java.util.Iterator[Row]): Unit =
        if (rows.hasNext) {
          val connection = driver(system).connect(url, properties)
          val csvRows = new CsvRows(rows.asScala, types, csv)
          try {
            connection.setAutoCommit(false)
            load(connection, csvRows)
            connection.commit()
          } catch {
            case failure: Throwable =>
              // The copy's own failure is the one to report, not a close on a dead socket.
              try connection.close()
              catch { case closing: Throwable => failure.addSuppressed(closing) }
              throw failure
          }
          // Committed: a close that fails now must not fail the task, or Spark would run it
          // again and stage its rows twice (Spark's JDBC writer ignores it the same way).
          try connection.close()
          catch { case _: java.sql.SQLException => () }
          TaskOutput.written(csvRows.rowsRead, csvRows.bytesRead)
        }
    })
  }

  private def dialect(system: String): CsvDialect = system match {
    case "postgres" => CsvDialect.Postgres
    case "mysql" => CsvDialect.MySql
    case other => throw new IllegalArgumentException(s"no bulk path for $other")
  }

  private def driver(system: String): Driver = system match {
    case "postgres" => new org.postgresql.Driver()
    case _ => new org.mariadb.jdbc.Driver()
  }

  /** `LOAD DATA LOCAL` turns a value its column cannot hold into a warning and a changed
    * value (the server cannot stop the client's stream halfway); here any warning fails the
    * copy, as the JDBC writer's INSERT would have, naming the warning's code, never its text
    * (which quotes the value). */
  private def loadData(connection: Connection, statement: String, rows: CsvRows): Unit = {
    val load = connection.createStatement()
    try {
      // Notes (say, about the binary log) change no value: not counted. The count, unlike
      // SHOW WARNINGS, includes conditions the server did not keep (max_error_count).
      load.execute("SET SESSION sql_notes = 0")
      load.unwrap(classOf[org.mariadb.jdbc.Statement]).setLocalInfileInputStream(rows)
      load.execute(statement)
      val count = load.executeQuery("SELECT @@warning_count")
      val warnings = if (count.next()) count.getLong(1) else 0L
      if (warnings > 0) {
        throw new SQLException(
          s"LOAD DATA into the staging table changed $warnings value(s) (MySQL warnings); " +
            "nothing of this partition was kept",
          "22000"
        )
      }
    } finally load.close()
  }
}
