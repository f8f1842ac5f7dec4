package etlc.jvm.metrics

import java.time.{Instant, ZoneOffset}
import java.time.format.DateTimeFormatter

import com.fasterxml.jackson.core.JsonGenerator
import com.fasterxml.jackson.core.util.MinimalPrettyPrinter
import com.fasterxml.jackson.databind.json.JsonMapper

/** What the listener tags its lines with, from the Spark conf the Python driver sets when it
  * builds its session (`etlc/runtime/session.py`): the pipeline and the run id, the same ones
  * the Python side's lines carry.
  */
final case class RunTags(pipeline: Option[String], runId: Option[String])

object RunTags {
  val PipelineConf = "spark.etlc.pipeline"
  val RunIdConf = "spark.etlc.runId"
  // A job property, not conf: the attempt changes within one SparkContext when a run is retried.
  val AttemptProperty = "etlc.attempt"

  def from(conf: String => Option[String]): RunTags =
    RunTags(conf(PipelineConf).filter(_.nonEmpty), conf(RunIdConf).filter(_.nonEmpty))
}

/** One completed stage: Spark's task metrics summed over the stage, plus the highest peak
  * execution memory of any one task (a sum of peaks would describe no real moment).
  */
final case class StageMetrics(
    stageId: Int,
    stageAttempt: Int,
    name: String,
    failed: Boolean,
    tasks: Int,
    durationMs: Option[Long],
    recordsRead: Long,
    bytesRead: Long,
    recordsWritten: Long,
    bytesWritten: Long,
    shuffleRecordsRead: Long,
    shuffleBytesRead: Long,
    shuffleRecordsWritten: Long,
    shuffleBytesWritten: Long,
    memorySpilledBytes: Long,
    diskSpilledBytes: Long,
    peakExecutionMemoryBytes: Long,
    executorRunTimeMs: Long,
    executorCpuTimeMs: Long,
    jvmGcTimeMs: Long
)

/** The `spark_stage_completed` log line, in the shape of the Python side's EventLog lines
  * (`etlc/runtime/logs.py`): ts, level, event, run_id, pipeline, attempt, then the fields;
  * a tag that is not known is left out rather than written as null.
  */
object StageLine {

  val Event = "spark_stage_completed"

  private val mapper = JsonMapper.builder().build()
  // Python's json.dumps separators, so one grep finds a key in either side's lines.
  private val writer = mapper.writer(new MinimalPrettyPrinter {
    override def writeObjectFieldValueSeparator(g: JsonGenerator): Unit = g.writeRaw(": ")
    override def writeObjectEntrySeparator(g: JsonGenerator): Unit = g.writeRaw(", ")
  })
  private val timestamp = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC)

  def render(tags: RunTags, attempt: Option[Int], m: StageMetrics, now: Instant): String = {
    val line = mapper.createObjectNode()
    line.put("ts", timestamp.format(now))
    // A failed stage is worth a look, not an error: Spark retries it, and the run's own
    // lines say whether the run failed.
    line.put("level", if (m.failed) "warning" else "info")
    line.put("event", Event)
    tags.runId.foreach(line.put("run_id", _))
    tags.pipeline.foreach(line.put("pipeline", _))
    attempt.foreach(a => line.put("attempt", a))
    line.put("stage_id", m.stageId)
    line.put("stage_attempt", m.stageAttempt)
    line.put("stage_name", m.name)
    line.put("status", if (m.failed) "failed" else "succeeded")
    line.put("tasks", m.tasks)
    m.durationMs.foreach(line.put("duration_ms", _))
    line.put("records_read", m.recordsRead)
    line.put("bytes_read", m.bytesRead)
    line.put("records_written", m.recordsWritten)
    line.put("bytes_written", m.bytesWritten)
    line.put("shuffle_records_read", m.shuffleRecordsRead)
    line.put("shuffle_bytes_read", m.shuffleBytesRead)
    line.put("shuffle_records_written", m.shuffleRecordsWritten)
    line.put("shuffle_bytes_written", m.shuffleBytesWritten)
    line.put("memory_spilled_bytes", m.memorySpilledBytes)
    line.put("disk_spilled_bytes", m.diskSpilledBytes)
    line.put("peak_execution_memory_bytes", m.peakExecutionMemoryBytes)
    line.put("executor_run_time_ms", m.executorRunTimeMs)
    line.put("executor_cpu_time_ms", m.executorCpuTimeMs)
    line.put("jvm_gc_time_ms", m.jvmGcTimeMs)
    writer.writeValueAsString(line)
  }
}
