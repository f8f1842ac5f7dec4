package etlc.jvm.load

import java.io.ByteArrayOutputStream
import java.nio.charset.StandardCharsets.UTF_8
import java.sql.{Date, Timestamp}
import java.time.{LocalDate, LocalDateTime}

import org.apache.spark.sql.Row

class CsvRowsSuite extends munit.FunSuite {

  import CsvType._

  private val schema = Array[CsvType](Text, Bool, Number, Decimal, Time, Day)

  private def csv(rows: Seq[Row], dialect: CsvDialect, s: Array[CsvType] = schema, readSize: Int = 8192): String = {
    val in = new CsvRows(rows.iterator, s, dialect)
    val out = new ByteArrayOutputStream()
    val buffer = new Array[Byte](readSize)
    var n = in.read(buffer, 0, readSize)
    while (n >= 0) {
      out.write(buffer, 0, n)
      n = in.read(buffer, 0, readSize)
    }
    new String(out.toByteArray, UTF_8)
  }

  private val at = Timestamp.valueOf(LocalDateTime.of(2026, 1, 2, 3, 4, 5, 123456000))

  test("a string is always quoted, its quotes doubled; newlines, commas and backslashes stay as they are") {
    val row = Row("say \"hi\", \\N\nnext", true, 7L, new java.math.BigDecimal("1E+3"), at, Date.valueOf("2026-01-02"))
    assertEquals(
      csv(Seq(row), CsvDialect.Postgres),
      "\"say \"\"hi\"\", \\N\nnext\",t,7,1000,2026-01-02 03:04:05.123456,2026-01-02\n"
    )
  }

  test("NULL and the empty string differ: unquoted empty (PostgreSQL) or NULL (MySQL) against \"\"") {
    val rows = Seq(Row("", false, null, null, null, null), Row(null, null, -1L, new java.math.BigDecimal("-0.50"), null, null))
    assertEquals(csv(rows, CsvDialect.Postgres), "\"\",f,,,,\n,,-1,-0.50,,\n")
    assertEquals(csv(rows, CsvDialect.MySql), "\"\",0,NULL,NULL,NULL,NULL\nNULL,NULL,-1,-0.50,NULL,NULL\n")
  }

  test("java.time values (the Java 8 datetime API) read as the java.sql ones do") {
    val row = Row("x", true, 1L, null, at.toLocalDateTime.atZone(java.time.ZoneId.systemDefault).toInstant, LocalDate.of(2026, 1, 2))
    assertEquals(csv(Seq(row), CsvDialect.MySql), "\"x\",1,1,NULL,2026-01-02 03:04:05.123456,2026-01-02\n")
  }

  test("bytes are PostgreSQL hex") {
    assertEquals(csv(Seq(Row(Array[Byte](0, 15, -1))), CsvDialect.Postgres, Array(Bytes)), "\"\\x000fff\"\n")
  }

  test("many rows come out whole and in order whatever size the reader asks for") {
    val one = Array[CsvType](Text, Number)
    val rows = (1 to 20000).map(i => Row(s"r\u00e9$i", i))
    // Quotes by concatenation: Scala 2.12's interpolators take no `\"`.
    val expected = rows.map(r => "\"" + r.getString(0) + "\"," + r.getInt(1) + "\n").mkString
    assertEquals(csv(rows, CsvDialect.Postgres, one, readSize = 7), expected)
    assertEquals(csv(rows, CsvDialect.Postgres, one, readSize = 1 << 20), expected)
    val counted = new CsvRows(rows.iterator, one, CsvDialect.Postgres)
    while (counted.read(new Array[Byte](4096), 0, 4096) >= 0) {}
    assertEquals((counted.rowsRead, counted.bytesRead), (20000L, expected.getBytes(UTF_8).length.toLong))
    val single = new CsvRows(Iterator(Row("a", 1)), one, CsvDialect.Postgres)
    val bytes = Iterator.continually(single.read()).takeWhile(_ >= 0).map(_.toByte).toArray
    assertEquals(new String(bytes, UTF_8), "\"a\",1\n")
  }

  test("no rows, no bytes") {
    assertEquals(csv(Seq.empty, CsvDialect.Postgres), "")
  }
}
