package etlc.jvm.metrics

import java.time.Instant

import scala.jdk.CollectionConverters._

import com.fasterxml.jackson.databind.json.JsonMapper

class StageLineSuite extends munit.FunSuite {

  private val mapper = JsonMapper.builder().build()

  private val metrics = StageMetrics(
    stageId = 3, stageAttempt = 0, name = "save at NativeMethodAccessorImpl.java:0", failed = false, tasks = 4,
    durationMs = Some(1200), recordsRead = 20000, bytesRead = 1048576, recordsWritten = 8, bytesWritten = 512,
    shuffleRecordsRead = 40, shuffleBytesRead = 4096, shuffleRecordsWritten = 40, shuffleBytesWritten = 4096,
    memorySpilledBytes = 0, diskSpilledBytes = 0, peakExecutionMemoryBytes = 65536, executorRunTimeMs = 900,
    executorCpuTimeMs = 700, jvmGcTimeMs = 12
  )

  test("a stage line has the Python EventLog's shape: ts, level, event, tags, then fields") {
    val line = StageLine.render(RunTags(Some("orders"), Some("abc123")), Some(2), metrics, Instant.parse("2025-01-02T03:04:05.678Z"))
    assert(!line.contains("\n"))
    assert(line.startsWith("{\"ts\": \"2025-01-02T03:04:05.678Z\", \"level\": \"info\", "), line)
    val json = mapper.readTree(line)
    assertEquals(
      json.fieldNames.asScala.take(7).toList,
      List("ts", "level", "event", "run_id", "pipeline", "attempt", "stage_id")
    )
    assertEquals(json.get("ts").asText, "2025-01-02T03:04:05.678Z")
    assertEquals(json.get("level").asText, "info")
    assertEquals(json.get("event").asText, "spark_stage_completed")
    assertEquals(json.get("attempt").asInt, 2)
    assertEquals(json.get("records_read").asLong, 20000L)
    assertEquals(json.get("executor_cpu_time_ms").asLong, 700L)
    assertEquals(json.get("status").asText, "succeeded")
  }

  test("unknown tags are left out, a failed stage is a warning") {
    val line = StageLine.render(RunTags(None, None), None, metrics.copy(failed = true, durationMs = None), Instant.EPOCH)
    val json = mapper.readTree(line)
    Seq("run_id", "pipeline", "attempt", "duration_ms").foreach(k => assert(!json.has(k), k))
    assertEquals(json.get("level").asText, "warning")
    assertEquals(json.get("status").asText, "failed")
  }

  test("tags come from the Spark conf the Python driver sets") {
    val conf = Map("spark.etlc.pipeline" -> "orders", "spark.etlc.runId" -> "")
    assertEquals(RunTags.from(conf.get), RunTags(Some("orders"), None))
  }
}

class StageSinkSuite extends munit.FunSuite {

  private def captured(): (java.io.ByteArrayOutputStream, () => java.io.PrintStream) = {
    val bytes = new java.io.ByteArrayOutputStream()
    val stream = new java.io.PrintStream(bytes, true, "UTF-8")
    (bytes, () => stream)
  }

  test("lines go to stdout by default, and to the run file the Python side made") {
    val file = java.nio.file.Files.createTempFile("etlc-run", ".jsonl")
    try {
      java.nio.file.Files.writeString(file, "{\"event\": \"run_started\"}\n")
      val (bytes, out) = captured()
      StageSink.from(Map(StageSink.FileConf -> file.toString).get, out).write("{\"a\": 1}")
      assertEquals(bytes.toString("UTF-8"), "{\"a\": 1}" + System.lineSeparator)
      assertEquals(java.nio.file.Files.readString(file), "{\"event\": \"run_started\"}\n{\"a\": 1}\n")
    } finally java.nio.file.Files.deleteIfExists(file)
  }

  test("a link where the run file was is not written through") {
    val dir = java.nio.file.Files.createTempDirectory("etlc-run")
    val target = java.nio.file.Files.writeString(dir.resolve("target"), "keep\n")
    val link = java.nio.file.Files.createSymbolicLink(dir.resolve("run.jsonl"), target)
    val (_, out) = captured()
    StageSink.from(Map(StageSink.FileConf -> link.toString).get, out).write("{\"a\": 1}")
    assertEquals(java.nio.file.Files.readString(target), "keep\n")
    Seq(link, target, dir).foreach(java.nio.file.Files.delete)
  }

  test("stdout off when the Python side prints text there; a missing file is not made") {
    val dir = java.nio.file.Files.createTempDirectory("etlc-run")
    val missing = dir.resolve("run.jsonl")
    val (bytes, out) = captured()
    val conf = Map(StageSink.StdoutConf -> "false", StageSink.FileConf -> missing.toString)
    StageSink.from(conf.get, out).write("{\"a\": 1}")
    assertEquals(bytes.size, 0)
    assert(!java.nio.file.Files.exists(missing))
    java.nio.file.Files.delete(dir)
  }
}
