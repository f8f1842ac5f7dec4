package etlc.jvm.transform

import org.apache.spark.sql.{Column, DataFrame}
import org.apache.spark.sql.expressions.Window
import org.apache.spark.sql.functions.{col, row_number}

import etlc.jvm.config.JvmStep

/** De-duplication by key, keeping the latest record: one row per `keys`, the one with the
  * greatest `order_by` value. Rows tied on it are ordered by all their other columns
  * (descending, nulls last), so the same row wins whatever order the rows arrive in; nulls in
  * `order_by` lose to any value. Spark's DataFrame API only (a window and `row_number`), no UDF.
  *
  * {{{
  * {"id": "latest", "type": "jvm", "input": "orders", "class": "etlc.jvm.transform.LatestByKey",
  *  "options": {"keys": ["order_id"], "order_by": "updated_at"}}
  * }}}
  */
final class LatestByKey extends Transform {

  override def optionsSchema: Option[String] = Transform.declared(getClass)

  def apply(input: DataFrame, step: JvmStep): DataFrame = {
    val keys = step.requiredOption("keys").array.map(_.string)
    val orderBy = step.requiredOption("order_by").string
    val columns = input.columns.toVector
    (keys :+ orderBy).filterNot(columns.contains).foreach { missing =>
      throw new JvmStepException(
        s"$$.options: the input has no column ${quoted(missing)} (its columns: ${columns.map(quoted).mkString(", ")})"
      )
    }
    val rest = columns.filterNot(c => keys.contains(c) || c == orderBy)
    val order = (orderBy +: rest).map(c => column(c).desc_nulls_last)
    val latest = Window.partitionBy(keys.map(column): _*).orderBy(order: _*)
    val rank = Iterator.from(0).map(i => s"_etlc_rank$i").find(r => !columns.contains(r)).get
    input.withColumn(rank, row_number().over(latest)).where(col(rank) === 1).drop(rank)
  }

  private def column(name: String): Column = col(quoted(name))

  private def quoted(name: String): String = "`" + name.replace("`", "``") + "`"
}
