package etlc.jvm.config

import java.nio.file.Path

import scala.collection.immutable.ListMap

/** A pipeline definition (`pipelines/<name>.json`), as typed as the Python side's AST
  * (`etlc/dsl/ast.py`): the same fields under the same names, the same defaults (`mode`,
  * `retry`, a load's `id`), and an absent option is `None`, never a value the file did not hold.
  *
  * `schemas/pipeline.schema.json` stays the single source of truth: this side checks shape
  * (keys and JSON types, required keys), not value rules (patterns, enums, ranges), which
  * `etlc lint` checks before a definition is ever compiled. [[SchemaBindings]] names the class
  * of every object of the schema; the drift test holds the two together.
  */
final case class PipelineConfig(
    schemaRef: Option[String],
    name: String,
    description: Option[String],
    mode: String,
    extract: Vector[ExtractStep],
    transform: Vector[TransformStep],
    load: Vector[LoadStep],
    retry: RetryConfig
) {
  def steps: Vector[Step] = extract ++ transform ++ load
}

object PipelineConfig {

  def load(file: Path): PipelineConfig = read(Json.read(file))

  def read(node: Node): PipelineConfig = {
    val f = node.fields[PipelineConfig]
    PipelineConfig(
      schemaRef = f.optString("$schema"),
      name = f.string("name"),
      description = f.optString("description"),
      mode = f.optString("mode").getOrElse("batch"),
      extract = f.required("extract").array.map(ExtractStep.read),
      transform = f.optional("transform").map(_.array.map(TransformStep.read)).getOrElse(Vector.empty),
      load = f.required("load").array.zipWithIndex.map { case (n, i) => LoadStep.read(n, i) },
      retry = f.optional("retry").map(RetryConfig.read).getOrElse(RetryConfig())
    )
  }
}

final case class RetryConfig(maxRetries: Int = 3, delaySeconds: Double = 5.0)

object RetryConfig {
  def read(node: Node): RetryConfig = {
    val f = node.fields[RetryConfig]
    val defaults = RetryConfig()
    RetryConfig(
      f.optInt("max_retries").getOrElse(defaults.maxRetries),
      f.optDouble("delay_seconds").getOrElse(defaults.delaySeconds)
    )
  }
}

sealed trait Step {
  def id: String
  def `type`: String
  def inputs: Vector[String] = Vector.empty
}

object Step {

  /** The step's `type`, one of `types`: it chooses the class that reads the rest. */
  private[config] def typeOf(node: Node, types: Vector[String], section: String): String =
    node.members.getOrElse("type", node.fail("missing required key \"type\"")).oneOf(types, s"$section type")
}

// --- extract ----------------------------------------------------------------------------

sealed trait ExtractStep extends Step {
  def schema: String
}

object ExtractStep {
  private val kinds = ListMap[String, Node => ExtractStep](
    "files" -> FilesExtract.read,
    "postgres" -> JdbcExtract.read,
    "mysql" -> JdbcExtract.read,
    "s3" -> S3Extract.read,
    "kafka" -> KafkaExtract.read
  )

  val types: Vector[String] = kinds.keys.toVector

  def read(node: Node): ExtractStep = kinds(Step.typeOf(node, types, "extract"))(node)
}

/** Options of a file read; the DSL's names (Spark's are set by the Python side). */
final case class ReadOptions(
    header: Option[Boolean],
    delimiter: Option[String],
    quote: Option[String],
    escape: Option[String],
    encoding: Option[String],
    nullValue: Option[String],
    dateFormat: Option[String],
    timestampFormat: Option[String],
    multiline: Option[Boolean],
    recursive: Option[Boolean]
)

object ReadOptions {
  def read(node: Node): ReadOptions = {
    val f = node.fields[ReadOptions]
    ReadOptions(
      header = f.optBoolean("header"),
      delimiter = f.optString("delimiter"),
      quote = f.optString("quote"),
      escape = f.optString("escape"),
      encoding = f.optString("encoding"),
      nullValue = f.optString("null_value"),
      dateFormat = f.optString("date_format"),
      timestampFormat = f.optString("timestamp_format"),
      multiline = f.optBoolean("multiline"),
      recursive = f.optBoolean("recursive")
    )
  }
}

final case class FilesExtract(
    id: String,
    `type`: String,
    path: String,
    format: String,
    schema: String,
    options: Option[ReadOptions],
    refresh: Option[String]
) extends ExtractStep

object FilesExtract {
  def read(node: Node): FilesExtract = {
    val f = node.fields[FilesExtract]
    FilesExtract(
      id = f.string("id"),
      `type` = f.string("type"),
      path = f.string("path"),
      format = f.string("format"),
      schema = f.string("schema"),
      options = f.optional("options").map(ReadOptions.read),
      refresh = f.optString("refresh")
    )
  }
}

final case class S3Extract(
    id: String,
    `type`: String,
    connection: String,
    path: String,
    format: String,
    schema: String,
    options: Option[ReadOptions],
    refresh: Option[String]
) extends ExtractStep

object S3Extract {
  def read(node: Node): S3Extract = {
    val f = node.fields[S3Extract]
    S3Extract(
      id = f.string("id"),
      `type` = f.string("type"),
      connection = f.string("connection"),
      path = f.string("path"),
      format = f.string("format"),
      schema = f.string("schema"),
      options = f.optional("options").map(ReadOptions.read),
      refresh = f.optString("refresh")
    )
  }
}

/** A bound of a partitioned database read: an integer, or a date or timestamp as text. */
sealed trait Bound extends JsonScalar

object Bound {
  final case class Integer(value: Long) extends Bound { def json: Any = value }
  final case class Text(value: String) extends Bound { def json: Any = value }

  def read(node: Node): Bound =
    if (node.isString) Text(node.string)
    else
      try Integer(node.long)
      catch { case _: ConfigException => node.fail(s"expected integer or string, got ${node.kind}") }
}

final case class JdbcPartition(column: String, lower: Bound, upper: Bound, partitions: Int)

object JdbcPartition {
  def read(node: Node): JdbcPartition = {
    val f = node.fields[JdbcPartition]
    JdbcPartition(
      f.string("column"),
      Bound.read(f.required("lower")),
      Bound.read(f.required("upper")),
      f.required("partitions").int
    )
  }
}

final case class JdbcExtract(
    id: String,
    `type`: String,
    connection: String,
    table: Option[String],
    query: Option[String],
    schema: String,
    partition: Option[JdbcPartition],
    fetchSize: Option[Int],
    refresh: Option[String]
) extends ExtractStep

object JdbcExtract {
  def read(node: Node): JdbcExtract = {
    val f = node.fields[JdbcExtract]
    JdbcExtract(
      id = f.string("id"),
      `type` = f.string("type"),
      connection = f.string("connection"),
      table = f.optString("table"),
      query = f.optString("query"),
      schema = f.string("schema"),
      partition = f.optional("partition").map(JdbcPartition.read),
      fetchSize = f.optInt("fetch_size"),
      refresh = f.optString("refresh")
    )
  }
}

final case class KafkaExtract(
    id: String,
    `type`: String,
    connection: String,
    topic: Option[String],
    topicPattern: Option[String],
    schema: String,
    startingOffsets: Option[String],
    endingOffsets: Option[String],
    confluentFraming: Option[Boolean],
    maxOffsetsPerTrigger: Option[Long],
    failOnDataLoss: Option[Boolean]
) extends ExtractStep

object KafkaExtract {
  def read(node: Node): KafkaExtract = {
    val f = node.fields[KafkaExtract]
    KafkaExtract(
      id = f.string("id"),
      `type` = f.string("type"),
      connection = f.string("connection"),
      topic = f.optString("topic"),
      topicPattern = f.optString("topic_pattern"),
      schema = f.string("schema"),
      startingOffsets = f.optString("starting_offsets"),
      endingOffsets = f.optString("ending_offsets"),
      confluentFraming = f.optBoolean("confluent_framing"),
      maxOffsetsPerTrigger = f.optLong("max_offsets_per_trigger"),
      failOnDataLoss = f.optBoolean("fail_on_data_loss")
    )
  }
}

// --- transform --------------------------------------------------------------------------

sealed trait TransformStep extends Step

object TransformStep {
  private val kinds = ListMap[String, Node => TransformStep](
    "filter" -> Filter.read,
    "select" -> Select.read,
    "derive" -> Derive.read,
    "aggregate" -> Aggregate.read,
    "join" -> Join.read,
    "window" -> Window.read,
    "jvm" -> JvmStep.read
  )

  val types: Vector[String] = kinds.keys.toVector

  def read(node: Node): TransformStep = kinds(Step.typeOf(node, types, "transform"))(node)
}

final case class Filter(id: String, `type`: String, input: String, condition: String) extends TransformStep {
  override def inputs: Vector[String] = Vector(input)
}

object Filter {
  def read(node: Node): Filter = {
    val f = node.fields[Filter]
    Filter(f.string("id"), f.string("type"), f.string("input"), f.string("condition"))
  }
}

final case class Select(id: String, `type`: String, input: String, columns: ListMap[String, String])
    extends TransformStep {
  override def inputs: Vector[String] = Vector(input)
}

object Select {
  def read(node: Node): Select = {
    val f = node.fields[Select]
    Select(f.string("id"), f.string("type"), f.string("input"), f.stringMap("columns"))
  }
}

final case class Derive(id: String, `type`: String, input: String, columns: ListMap[String, String])
    extends TransformStep {
  override def inputs: Vector[String] = Vector(input)
}

object Derive {
  def read(node: Node): Derive = {
    val f = node.fields[Derive]
    Derive(f.string("id"), f.string("type"), f.string("input"), f.stringMap("columns"))
  }
}

final case class Aggregate(
    id: String,
    `type`: String,
    input: String,
    groupBy: Vector[String],
    aggregates: ListMap[String, String]
) extends TransformStep {
  override def inputs: Vector[String] = Vector(input)
}

object Aggregate {
  def read(node: Node): Aggregate = {
    val f = node.fields[Aggregate]
    Aggregate(f.string("id"), f.string("type"), f.string("input"), f.strings("group_by"), f.stringMap("aggregates"))
  }
}

final case class JoinWithin(
    leftTime: String,
    rightTime: String,
    after: String,
    before: Option[String],
    watermark: String
)

object JoinWithin {
  def read(node: Node): JoinWithin = {
    val f = node.fields[JoinWithin]
    JoinWithin(f.string("left_time"), f.string("right_time"), f.string("after"), f.optString("before"), f.string("watermark"))
  }
}

final case class Join(
    id: String,
    `type`: String,
    left: String,
    right: String,
    on: Vector[String],
    condition: Option[String],
    how: Option[String],
    within: Option[JoinWithin]
) extends TransformStep {
  override def inputs: Vector[String] = Vector(left, right)
}

object Join {
  def read(node: Node): Join = {
    val f = node.fields[Join]
    Join(
      id = f.string("id"),
      `type` = f.string("type"),
      left = f.string("left"),
      right = f.string("right"),
      on = f.strings("on"),
      condition = f.optString("condition"),
      how = f.optString("how"),
      within = f.optional("within").map(JoinWithin.read)
    )
  }
}

final case class TimeWindow(column: String, size: String, slide: Option[String], watermark: Option[String])

object TimeWindow {
  def read(node: Node): TimeWindow = {
    val f = node.fields[TimeWindow]
    TimeWindow(f.string("column"), f.string("size"), f.optString("slide"), f.optString("watermark"))
  }
}

final case class RowWindow(orderBy: Vector[String], size: Int)

object RowWindow {
  def read(node: Node): RowWindow = {
    val f = node.fields[RowWindow]
    RowWindow(f.required("order_by").array.map(_.string), f.required("size").int)
  }
}

final case class Window(
    id: String,
    `type`: String,
    input: String,
    time: Option[TimeWindow],
    rows: Option[RowWindow],
    groupBy: Vector[String],
    aggregates: ListMap[String, String]
) extends TransformStep {
  override def inputs: Vector[String] = Vector(input)
}

object Window {
  def read(node: Node): Window = {
    val f = node.fields[Window]
    Window(
      id = f.string("id"),
      `type` = f.string("type"),
      input = f.string("input"),
      time = f.optional("time").map(TimeWindow.read),
      rows = f.optional("rows").map(RowWindow.read),
      groupBy = f.strings("group_by"),
      aggregates = f.stringMap("aggregates")
    )
  }
}

/** A transform implemented by a JVM class (`etlc.jvm.transform.Transform`): its typed
  * configuration, which the class receives. `options` are the class's own, as written (a JSON
  * object; read them through [[option]] and [[Node]], whose errors carry the JSON path);
  * without `schema` the output has the input's schema.
  */
final case class JvmStep(
    id: String,
    `type`: String,
    input: String,
    `class`: String,
    options: Option[Node],
    schema: Option[String]
) extends TransformStep {
  override def inputs: Vector[String] = Vector(input)

  /** The option `key`, if the step sets it. */
  def option(key: String): Option[Node] = options.flatMap(_.members.get(key))

  /** The option `key`; its absence fails with the options' path. */
  def requiredOption(key: String): Node = option(key).getOrElse {
    val problem = s"missing required key ${Json.quote(key)}"
    options.fold(throw new ConfigException(JvmStep.Source, "$.options", problem))(_.fail(problem))
  }
}

object JvmStep {

  /** How messages name a step's configuration handed over by the driver (not a file). */
  val Source = "the step's configuration"

  def read(node: Node): JvmStep = {
    val f = node.fields[JvmStep]
    JvmStep(
      id = f.string("id"),
      `type` = f.string("type"),
      input = f.string("input"),
      `class` = f.string("class"),
      options = f.optional("options").map(_.anyObject),
      schema = f.optString("schema")
    )
  }

  /** The configuration the driver hands over: the step's JSON object, as in the definition. */
  def parse(json: String): JvmStep = read(Json.parse(json.getBytes(java.nio.charset.StandardCharsets.UTF_8), Source))
}

// --- load -------------------------------------------------------------------------------

sealed trait LoadStep extends Step {
  def input: String
  def mode: String
  override def inputs: Vector[String] = Vector(input)
}

object LoadStep {
  private val kinds = ListMap[String, (Node, String) => LoadStep](
    "files" -> FilesLoad.read,
    "postgres" -> JdbcLoad.read,
    "mysql" -> JdbcLoad.read,
    "s3" -> S3Load.read,
    "kafka" -> KafkaLoad.read
  )

  val types: Vector[String] = kinds.keys.toVector

  /** The load at `index` of its section; one without an `id` gets the checker's default,
    * `load_<n>_<input>`, so both sides name it alike in logs and reports.
    */
  def read(node: Node, index: Int): LoadStep = {
    val kind = Step.typeOf(node, types, "load")
    val members = node.members
    val id = members.get("id") match {
      case Some(given) => given.string
      case None        => s"load_${index + 1}_${members.get("input").filter(_.isString).map(_.string).getOrElse("")}"
    }
    kinds(kind)(node, id)
  }
}

final case class WriteOptions(
    header: Option[Boolean],
    delimiter: Option[String],
    compression: Option[String],
    singleFile: Option[Boolean]
)

object WriteOptions {
  def read(node: Node): WriteOptions = {
    val f = node.fields[WriteOptions]
    WriteOptions(f.optBoolean("header"), f.optString("delimiter"), f.optString("compression"), f.optBoolean("single_file"))
  }
}

final case class FilesLoad(
    id: String,
    `type`: String,
    input: String,
    path: String,
    format: String,
    mode: String,
    partitionBy: Vector[String],
    keys: Vector[String],
    sequenceBy: Option[String],
    options: Option[WriteOptions]
) extends LoadStep

object FilesLoad {
  def read(node: Node, id: String): FilesLoad = {
    val f = node.fields[FilesLoad]
    FilesLoad(
      id = id,
      `type` = f.string("type"),
      input = f.string("input"),
      path = f.string("path"),
      format = f.string("format"),
      mode = f.string("mode"),
      partitionBy = f.strings("partition_by"),
      keys = f.strings("keys"),
      sequenceBy = f.optString("sequence_by"),
      options = f.optional("options").map(WriteOptions.read)
    )
  }
}

final case class S3Load(
    id: String,
    `type`: String,
    input: String,
    connection: String,
    path: String,
    format: String,
    mode: String,
    partitionBy: Vector[String],
    keys: Vector[String],
    sequenceBy: Option[String],
    options: Option[WriteOptions]
) extends LoadStep

object S3Load {
  def read(node: Node, id: String): S3Load = {
    val f = node.fields[S3Load]
    S3Load(
      id = id,
      `type` = f.string("type"),
      input = f.string("input"),
      connection = f.string("connection"),
      path = f.string("path"),
      format = f.string("format"),
      mode = f.string("mode"),
      partitionBy = f.strings("partition_by"),
      keys = f.strings("keys"),
      sequenceBy = f.optString("sequence_by"),
      options = f.optional("options").map(WriteOptions.read)
    )
  }
}

final case class JdbcLoad(
    id: String,
    `type`: String,
    input: String,
    connection: String,
    table: String,
    mode: String,
    keys: Vector[String],
    sequenceBy: Option[String],
    batchSize: Option[Int],
    parallelism: Option[Int],
    createTable: Option[String],
    addColumns: Option[Boolean]
) extends LoadStep

object JdbcLoad {
  def read(node: Node, id: String): JdbcLoad = {
    val f = node.fields[JdbcLoad]
    JdbcLoad(
      id = id,
      `type` = f.string("type"),
      input = f.string("input"),
      connection = f.string("connection"),
      table = f.string("table"),
      mode = f.string("mode"),
      keys = f.strings("keys"),
      sequenceBy = f.optString("sequence_by"),
      batchSize = f.optInt("batch_size"),
      parallelism = f.optInt("parallelism"),
      createTable = f.optString("create_table"),
      addColumns = f.optBoolean("add_columns")
    )
  }
}

final case class KafkaLoad(
    id: String,
    `type`: String,
    input: String,
    connection: String,
    topic: String,
    mode: String,
    keys: Vector[String],
    sequenceBy: Option[String]
) extends LoadStep

object KafkaLoad {
  def read(node: Node, id: String): KafkaLoad = {
    val f = node.fields[KafkaLoad]
    KafkaLoad(
      id = id,
      `type` = f.string("type"),
      input = f.string("input"),
      connection = f.string("connection"),
      topic = f.string("topic"),
      mode = f.string("mode"),
      keys = f.strings("keys"),
      sequenceBy = f.optString("sequence_by")
    )
  }
}
