package etlc.jvm.metrics

import java.io.PrintStream
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, LinkOption, Path, Paths, StandardOpenOption}
import java.time.Instant
import java.util.concurrent.{ConcurrentHashMap, TimeUnit}

import scala.util.Try
import scala.util.control.NonFatal

import org.apache.spark.SparkConf
import org.apache.spark.scheduler.{
  SparkListener,
  SparkListenerStageCompleted,
  SparkListenerStageSubmitted,
  SparkListenerTaskEnd,
  StageInfo
}

/** Writes one `spark_stage_completed` JSON line per completed Spark stage where the Python
  * driver's own JSON lines go (see [[StageSink]]), so the stages' resource use sits in the same
  * log as the steps.
  *
  * Registered by every generated submit command (`spark.extraListeners`); Spark calls the
  * constructor with its conf. Nothing here may fail a run: every callback drops what it cannot
  * do, and the constructor reads the conf with defaults only.
  */
class StageMetricsListener(conf: SparkConf, out: () => PrintStream) extends SparkListener {

  // What Spark calls. System.out is looked up at each line, in case it is replaced.
  def this(conf: SparkConf) = this(conf, () => System.out)

  private val tags = Try(RunTags.from(key => conf.getOption(key))).getOrElse(RunTags(None, None))
  private val sink = StageSink.from(key => conf.getOption(key), out)

  // Keyed by (stage id, stage attempt); entries live from submission to completion.
  private val attempts = new ConcurrentHashMap[(Int, Int), Int]()
  private val peaks = new ConcurrentHashMap[(Int, Int), java.lang.Long]()

  override def onStageSubmitted(event: SparkListenerStageSubmitted): Unit = guarded {
    val info = event.stageInfo
    Option(event.properties)
      .flatMap(p => Option(p.getProperty(RunTags.AttemptProperty)))
      .flatMap(s => scala.util.Try(s.toInt).toOption)
      .foreach(a => attempts.put((info.stageId, info.attemptNumber()), a))
  }

  override def onTaskEnd(event: SparkListenerTaskEnd): Unit = guarded {
    Option(event.taskMetrics).foreach { m =>
      peaks.merge((event.stageId, event.stageAttemptId), m.peakExecutionMemory, (a, b) => math.max(a, b))
    }
  }

  override def onStageCompleted(event: SparkListenerStageCompleted): Unit = guarded {
    val info = event.stageInfo
    val key = (info.stageId, info.attemptNumber())
    val attempt = Option(attempts.remove(key))
    val peak = Option(peaks.remove(key)).map(_.longValue).getOrElse(0L)
    val line = StageLine.render(tags, attempt, StageMetricsListener.metrics(info, peak), Instant.now())
    sink.write(line)
  }

  private def guarded(body: => Unit): Unit =
    try body
    catch { case NonFatal(_) | _: LinkageError => () }
}

object StageMetricsListener {

  private[metrics] def metrics(info: StageInfo, peak: Long): StageMetrics = {
    val m = info.taskMetrics
    val duration = for (start <- info.submissionTime; end <- info.completionTime) yield end - start
    StageMetrics(
      stageId = info.stageId,
      stageAttempt = info.attemptNumber(),
      name = info.name,
      failed = info.failureReason.isDefined,
      tasks = info.numTasks,
      durationMs = duration,
      recordsRead = m.inputMetrics.recordsRead,
      bytesRead = m.inputMetrics.bytesRead,
      recordsWritten = m.outputMetrics.recordsWritten,
      bytesWritten = m.outputMetrics.bytesWritten,
      shuffleRecordsRead = m.shuffleReadMetrics.recordsRead,
      shuffleBytesRead = m.shuffleReadMetrics.totalBytesRead,
      shuffleRecordsWritten = m.shuffleWriteMetrics.recordsWritten,
      shuffleBytesWritten = m.shuffleWriteMetrics.bytesWritten,
      memorySpilledBytes = m.memoryBytesSpilled,
      diskSpilledBytes = m.diskBytesSpilled,
      peakExecutionMemoryBytes = peak,
      executorRunTimeMs = m.executorRunTime,
      executorCpuTimeMs = TimeUnit.NANOSECONDS.toMillis(m.executorCpuTime),
      jvmGcTimeMs = m.jvmGCTime
    )
  }
}

/** Where stage lines go: the driver's stdout, the stream the Python driver's JSON lines reach
  * too (spark-submit copies the Python process's output to it), unless the Python side prints
  * readable text there instead; and the run's JSON lines file when the Python side keeps one.
  */
final class StageSink(stdout: Option[() => PrintStream], file: Option[Path]) {

  def write(line: String): Unit = {
    // One println: PrintStream writes it whole, never interleaved with another println.
    stdout.foreach(_().println(line))
    // The whole line in one buffer, written to a file opened for appending, as the Python
    // side writes its own lines to the same file: neither splits the other's. Never through
    // a link put where the file was.
    file.foreach { path =>
      Try {
        val channel = FileChannel.open(path, StandardOpenOption.APPEND, LinkOption.NOFOLLOW_LINKS)
        try {
          val bytes = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8))
          while (bytes.hasRemaining) channel.write(bytes)
        } finally channel.close()
      }
    }
  }
}

object StageSink {
  val FileConf = "spark.etlc.metrics.file"
  val StdoutConf = "spark.etlc.metrics.stdout"

  /** From the conf the Python driver sets. The file must exist: the Python side made it, so a
    * setting that names another file makes nothing new.
    */
  def from(conf: String => Option[String], stdout: () => PrintStream): StageSink = {
    val printed = !conf(StdoutConf).exists(_.trim.equalsIgnoreCase("false"))
    val file = conf(FileConf).filter(_.nonEmpty).flatMap(f => Try(Paths.get(f)).toOption)
    val regular = file.filter(Files.isRegularFile(_, LinkOption.NOFOLLOW_LINKS))
    new StageSink(if (printed) Some(stdout) else None, regular)
  }
}
