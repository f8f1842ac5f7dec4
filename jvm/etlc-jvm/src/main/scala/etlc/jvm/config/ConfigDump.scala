package etlc.jvm.config

import java.nio.file.Paths

import com.fasterxml.jackson.databind.JsonNode
import com.fasterxml.jackson.databind.node.{JsonNodeFactory, ObjectNode}

/** Prints, as one JSON object, how the JVM side reads configuration files and which fields its
  * classes have: the drift test (tests/unit/jvm) compares it with the Python side.
  *
  * {{{
  * java -cp "etlc-jvm.jar:$PYSPARK_JARS" etlc.jvm.config.ConfigDump \
  *     --definition pipelines/a.json ... --environment pipelines/env/local.json ...
  * }}}
  * Output: `definitions` and `environments` (file -> canonical JSON, or {"error": message}),
  * `schema_bindings` (schema pointer -> the JSON fields of each bound class), the same for the
  * environment schema (`environment_schema_bindings`) and `environment_classes` (name -> fields).
  */
object ConfigDump {

  private val factory = JsonNodeFactory.instance

  def main(args: Array[String]): Unit = {
    val out = factory.objectNode
    val definitions = out.putObject("definitions")
    val environments = out.putObject("environments")
    args.toList.grouped(2).foreach {
      case List("--definition", file)  => definitions.set[JsonNode](file, dump(PipelineConfig.load(Paths.get(file))))
      case List("--environment", file) => environments.set[JsonNode](file, dump(EnvironmentConfig.load(Paths.get(file))))
      case other =>
        System.err.println(s"usage: ConfigDump (--definition FILE | --environment FILE)...; got ${other.mkString(" ")}")
        sys.exit(2)
    }
    val bindings = out.putObject("schema_bindings")
    PipelineSchema.bindings.foreach { case (pointer, classes) =>
      val bound = bindings.putArray(pointer)
      classes.foreach(cls => bound.add(fields(cls)))
    }
    val envBindings = out.putObject("environment_schema_bindings")
    EnvironmentSchema.bindings.foreach { case (pointer, classes) =>
      val bound = envBindings.putArray(pointer)
      classes.foreach(cls => bound.add(fields(cls)))
    }
    val env = out.putObject("environment_classes")
    environmentClasses.foreach { case (name, cls) => env.set[JsonNode](name, fields(cls)) }
    println(Json.writer.writerWithDefaultPrettyPrinter.writeValueAsString(out))
  }

  /** The environment classes by name, also checked against environment.py. */
  private val environmentClasses: Seq[(String, Class[_])] = Seq(
    "environment" -> classOf[EnvironmentConfig],
    "etlc" -> classOf[EtlcSettings],
    "vault.file" -> classOf[FileVault],
    "vault.env" -> classOf[EnvVault],
    "vault.hadoop" -> classOf[HadoopVault],
    "postgres" -> classOf[DatabaseProfile],
    "mysql" -> classOf[DatabaseProfile],
    "kafka" -> classOf[KafkaProfile],
    "s3" -> classOf[S3Profile]
  )

  private def dump(read: => Any): JsonNode =
    try Canonical.toJson(read)
    catch { case e: ConfigException => factory.objectNode.put("error", e.getMessage) }

  private def fields(cls: Class[_]): ObjectNode = {
    val node = factory.objectNode.put("class", cls.getName)
    val names = node.putArray("fields")
    JsonNames.fields(cls).foreach(names.add)
    node
  }
}
