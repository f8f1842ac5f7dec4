package org.apache.spark.etlc

import org.apache.spark.TaskContext

/** A task's output metrics (records and bytes written), which Spark lets only its own
  * packages set: etlc's bulk loads report what they wrote as Spark's JDBC writer does, so the
  * stage lines and the UI count their rows. */
object TaskOutput {

  def written(records: Long, bytes: Long): Unit =
    Option(TaskContext.get()).foreach { context =>
      val metrics = context.taskMetrics().outputMetrics
      metrics.setRecordsWritten(records)
      metrics.setBytesWritten(bytes)
    }
}
