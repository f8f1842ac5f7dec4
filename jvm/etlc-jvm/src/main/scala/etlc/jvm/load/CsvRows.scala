package etlc.jvm.load

import java.io.InputStream
import java.nio.charset.StandardCharsets.UTF_8
import java.sql.{Date, Timestamp}
import java.time.{Instant, LocalDate, LocalDateTime, ZoneId}
import java.time.format.DateTimeFormatter

import org.apache.spark.sql.Row
import org.apache.spark.sql.types._

/** How a database's bulk loader reads CSV back: the text of a NULL and of a boolean, and
  * whether it takes bytes.
  *
  * Every string is quoted, a quote inside it doubled, so an empty string and NULL stay apart
  * and no value can end its field, its line or the data early.
  */
final case class CsvDialect(nullField: String, trueText: String, falseText: String, bytes: Boolean)

object CsvDialect {

  /** `COPY ... FROM STDIN (FORMAT csv)`: an unquoted empty field is NULL; bytea in hex. */
  val Postgres: CsvDialect = CsvDialect(nullField = "", trueText = "t", falseText = "f", bytes = true)

  /** `LOAD DATA ... OPTIONALLY ENCLOSED BY '"' ESCAPED BY ''`: an unquoted NULL is NULL. Bytes
    * would be read through the column's character set, so a binary column is not copied. */
  val MySql: CsvDialect = CsvDialect(nullField = "NULL", trueText = "1", falseText = "0", bytes = false)
}

/** The CSV form of a column's values. */
sealed trait CsvType

object CsvType {
  case object Text extends CsvType
  case object Bool extends CsvType
  case object Number extends CsvType
  case object Decimal extends CsvType
  case object Day extends CsvType
  case object Time extends CsvType
  case object Bytes extends CsvType

  /** Each column's form, or None when one has no CSV form that `dialect`'s loader reads back
    * as the value the JDBC writer stores (such a schema is loaded through the writer). */
  def of(schema: StructType, dialect: CsvDialect): Option[Array[CsvType]] = {
    val types = schema.fields.map(f => of(f.dataType, dialect))
    if (types.forall(_.isDefined)) Some(types.map(_.get)) else None
  }

  private def of(dataType: DataType, dialect: CsvDialect): Option[CsvType] = dataType match {
    case StringType => Some(Text)
    case BooleanType => Some(Bool)
    case ByteType | ShortType | IntegerType | LongType | FloatType | DoubleType => Some(Number)
    case _: DecimalType => Some(Decimal)
    case DateType => Some(Day)
    case TimestampType | TimestampNTZType => Some(Time)
    case BinaryType if dialect.bytes => Some(Bytes)
    case _ => None
  }
}

/** The rows as the CSV a bulk loader reads, produced as it is read: a chunk of lines at a
  * time, never the partition at once.
  *
  * Values are written as the JDBC writer would have sent them: a timestamp or a date as its
  * wall-clock time in the JVM's default zone (what `setTimestamp` and `setDate` send), a
  * decimal in plain notation, a timestamp to the microsecond (Spark's precision).
  */
final class CsvRows(rows: Iterator[Row], types: Array[CsvType], dialect: CsvDialect) extends InputStream {

  private val writers: Array[CsvRows.Writer] = types.map(t => CsvRows.writer(t, dialect))
  private val text = new java.lang.StringBuilder(CsvRows.ChunkChars + 4096)
  private var chunk: Array[Byte] = Array.emptyByteArray
  private var at = 0

  /** The rows and bytes produced so far. */
  var rowsRead: Long = 0L
  var bytesRead: Long = 0L

  override def read(): Int =
    if (!fill()) -1
    else {
      at += 1
      chunk(at - 1) & 0xff
    }

  override def read(into: Array[Byte], offset: Int, length: Int): Int =
    if (length == 0) 0
    else if (!fill()) -1
    else {
      val n = math.min(length, chunk.length - at)
      System.arraycopy(chunk, at, into, offset, n)
      at += n
      n
    }

  private def fill(): Boolean = {
    while (at >= chunk.length && rows.hasNext) {
      text.setLength(0)
      while (rows.hasNext && text.length < CsvRows.ChunkChars) line(rows.next())
      chunk = text.toString.getBytes(UTF_8)
      bytesRead += chunk.length
      at = 0
    }
    at < chunk.length
  }

  private def line(row: Row): Unit = {
    var i = 0
    while (i < writers.length) {
      if (i > 0) text.append(',')
      if (row.isNullAt(i)) text.append(dialect.nullField) else writers(i)(row, i, text)
      i += 1
    }
    text.append('\n')
    rowsRead += 1
  }
}

object CsvRows {

  type Writer = (Row, Int, java.lang.StringBuilder) => Unit

  private val ChunkChars = 1 << 16
  private val Micros = DateTimeFormatter.ofPattern("uuuu-MM-dd HH:mm:ss.SSSSSS")
  private val Hex = "0123456789abcdef".toCharArray

  private def writer(csvType: CsvType, dialect: CsvDialect): Writer = csvType match {
    case CsvType.Text => (row, i, out) => quoted(row.getString(i), out)
    case CsvType.Bool => (row, i, out) => out.append(if (row.getBoolean(i)) dialect.trueText else dialect.falseText)
    case CsvType.Number => (row, i, out) => out.append(row.get(i).toString)
    case CsvType.Decimal => (row, i, out) => out.append(row.getDecimal(i).toPlainString)
    case CsvType.Day => (row, i, out) => out.append(localDate(row.get(i)).toString)
    case CsvType.Time => (row, i, out) => out.append(Micros.format(localDateTime(row.get(i))))
    case CsvType.Bytes => (row, i, out) => hex(row.getAs[Array[Byte]](i), out)
  }

  private def quoted(value: String, out: java.lang.StringBuilder): Unit = {
    out.append('"')
    var i = 0
    while (i < value.length) {
      val c = value.charAt(i)
      if (c == '"') out.append('"')
      out.append(c)
      i += 1
    }
    out.append('"')
  }

  private def hex(bytes: Array[Byte], out: java.lang.StringBuilder): Unit = {
    out.append("\"\\x")
    bytes.foreach { b =>
      out.append(Hex((b >> 4) & 0xf)).append(Hex(b & 0xf))
    }
    out.append('"')
  }

  private def localDate(value: Any): LocalDate = value match {
    case d: Date => d.toLocalDate
    case d: LocalDate => d
    case other => throw new IllegalArgumentException(s"not a date: ${other.getClass.getName}")
  }

  private def localDateTime(value: Any): LocalDateTime = value match {
    case t: Timestamp => t.toLocalDateTime
    case t: Instant => LocalDateTime.ofInstant(t, ZoneId.systemDefault())
    case t: LocalDateTime => t
    case other => throw new IllegalArgumentException(s"not a timestamp: ${other.getClass.getName}")
  }
}
