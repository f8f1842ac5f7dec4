package etlc.jvm.transform

import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Paths}

import scala.collection.immutable.ListMap

import org.apache.spark.sql.DataFrame

import etlc.jvm.config.{ConfigException, Json, JvmStep, JvmStepConfig, SchemaCheck}

class JvmStepsSuite extends munit.FunSuite {

  private val step =
    """{"id": "latest", "type": "jvm", "input": "orders", "class": "etlc.jvm.transform.LatestByKey",
      | "options": {"keys": ["order_id"], "order_by": "ordered_at"}}""".stripMargin

  // Surefire runs in the module's folder, jvm/etlc-jvm.
  private val latestSchema = new String(
    Files.readAllBytes(Paths.get("../../schemas/jvm/etlc.jvm.transform.LatestByKey.json")),
    UTF_8
  )

  private def options(json: String) = Json.parse(json.getBytes(UTF_8), JvmStepConfig.Source)

  private def refused(json: String): String =
    intercept[ConfigException](SchemaCheck.check(Json.writer.readTree(latestSchema), options(json))).getMessage

  test("a step's configuration reads to its typed values, options as written") {
    val config = JvmStepConfig.parse(step)
    assertEquals((config.id, config.input, config.`class`, config.schema), ("latest", "orders", "etlc.jvm.transform.LatestByKey", None))
    assertEquals(config.requiredOption("keys").array.map(_.string), Vector("order_id"))
    assertEquals(config.option("order_by").map(_.string), Some("ordered_at"))
    assertEquals(config.option("nope"), None)
  }

  test("options keep the document's order") {
    val config = JvmStepConfig.parse(step.replace("\"order_by\": \"ordered_at\"", "\"z\": 1, \"a\": 2, \"m\": 3, \"b\": 4, \"y\": 5"))
    assertEquals(config.options.map(_.members.keys.toVector), Some(Vector("keys", "z", "a", "m", "b", "y")))
  }

  test("options that are not an object, and a missing option, fail with their JSON path") {
    val bad = intercept[ConfigException](JvmStepConfig.parse(step.replace("{\"keys\": [\"order_id\"], \"order_by\": \"ordered_at\"}", "[1]")))
    assertEquals(bad.getMessage, "the step's configuration: $.options: expected object, got array")
    val config = JvmStepConfig.parse(step)
    assertEquals(
      intercept[ConfigException](config.requiredOption("window")).getMessage,
      "the step's configuration: $.options: missing required key \"window\""
    )
    assertEquals(
      intercept[ConfigException](config.requiredOption("order_by").array).getMessage,
      "the step's configuration: $.options.order_by: expected array, got string"
    )
  }

  test("LatestByKey declares the schema etlc lint checks: the same file, shipped in the jar") {
    assertEquals(Transform.declared(classOf[LatestByKey]), Some(latestSchema))
    assertEquals(SchemaCheck.unsupported(Json.writer.readTree(latestSchema)), Vector.empty)
  }

  test("options are checked against the declared schema, with their path") {
    SchemaCheck.check(Json.writer.readTree(latestSchema), options("""{"keys": ["a", "b"], "order_by": "t"}"""))
    assertEquals(refused("""{"keys": ["a"]}"""), "the step's configuration: $: missing required key \"order_by\"")
    assertEquals(refused("""{"keys": "a", "order_by": "t"}"""), "the step's configuration: $.keys: expected array, got string")
    assertEquals(refused("""{"keys": [], "order_by": "t"}"""), "the step's configuration: $.keys: must have at least 1 item(s)")
    assertEquals(refused("""{"keys": ["a", "a"], "order_by": "t"}"""), "the step's configuration: $.keys: must not repeat an item")
    assertEquals(refused("""{"keys": [1], "order_by": "t"}"""), "the step's configuration: $.keys[0]: expected string, got number")
    assert(refused("""{"keys": ["a"], "order_by": "t", "kees": 1}""").endsWith("$: unknown key \"kees\" (known: keys, order_by)"))
  }

  test("the other keywords of the subset; anything else is named, not half-checked") {
    val schema = Json.writer.readTree(
      """{"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 3},
        | "s": {"enum": ["x", "y"]}, "p": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 3}}}""".stripMargin
    )
    SchemaCheck.check(schema, options("""{"n": 2.0, "s": "x", "p": "abc", "other": 1}"""))
    def fails(json: String) = intercept[ConfigException](SchemaCheck.check(schema, options(json))).problem
    assertEquals(fails("""{"n": 1.5}"""), "expected integer, got number")
    assertEquals(fails("""{"n": 4}"""), "must be at most 3")
    assertEquals(fails("""{"s": "z"}"""), "expected one of [\"x\",\"y\"]")
    assertEquals(fails("""{"p": "ABC"}"""), "must match the pattern \"^[a-z]+$\"")
    assertEquals(fails("""{"p": "abcd"}"""), "must have at most 3 character(s)")
    assertEquals(
      SchemaCheck.unsupported(Json.writer.readTree("""{"oneOf": [], "properties": {"a": {"format": "date"}}}""")),
      Vector("format", "oneOf")
    )
  }

  test("a class that is missing, or no Transform, is a JvmStepException saying so") {
    val missing = intercept[JvmStepException](JvmSteps.instantiate("com.example.NoSuchStep")).getMessage
    assert(missing.startsWith("class not found on the JVM's classpath"), missing)
    assertEquals(
      intercept[JvmStepException](JvmSteps.instantiate("java.lang.String")).getMessage,
      "does not implement etlc.jvm.transform.Transform"
    )
  }

  test("the driver's entry hands the class its typed step and the environment's variables") {
    val recorded = """{"id": "r", "type": "jvm", "input": "orders", "class": "etlc.jvm.transform.RecordingStep"}"""
    val out = JvmSteps(null, "etlc.jvm.transform.RecordingStep", recorded, """{"region": "eu", "db": "vault://db#pw"}""")
    assertEquals(out, null)
    assertEquals(RecordingStep.seen.map(_._1.id), Some("r"))
    assertEquals(RecordingStep.seen.map(_._2), Some(ListMap("region" -> "eu", "db" -> "vault://db#pw")))
    val bad = intercept[JvmStepException](JvmSteps(null, "etlc.jvm.transform.RecordingStep", recorded, """{"n": 1}"""))
    assertEquals(bad.getMessage, "$.n: expected string, got number")
  }
}

/** A step that keeps what it was given: the entry's contract, without a Spark session. */
class RecordingStep extends Transform {
  def apply(input: DataFrame, step: JvmStep): DataFrame = input

  override def apply(input: DataFrame, step: JvmStep, variables: ListMap[String, String]): DataFrame = {
    RecordingStep.seen = Some((step, variables))
    input
  }
}

object RecordingStep {
  @volatile var seen: Option[(JvmStep, ListMap[String, String])] = None
}
