package etlc.jvm.config

import com.fasterxml.jackson.databind.node.ObjectNode

import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path, Paths}

import scala.jdk.CollectionConverters._

class PipelineConfigSuite extends munit.FunSuite {

  // Surefire runs in the module's folder, jvm/etlc-jvm.
  private val pipelines: Path = Paths.get("../../pipelines")

  private def parse(json: String): PipelineConfig =
    PipelineConfig.read(Json.parse(json.getBytes(UTF_8), "pipelines/x.json"))

  private def failure(json: String): String =
    intercept[ConfigException](parse(json)).getMessage

  private val minimal =
    """{"name": "p", "extract": [{"id": "a", "type": "files", "path": "/in", "format": "csv",
      |  "schema": "a.avsc"}], "load": [{"type": "files", "input": "a", "path": "/out",
      |  "format": "parquet", "mode": "append"}]}""".stripMargin

  test("every example definition in pipelines/ loads") {
    val files = Files.list(pipelines).iterator.asScala.filter(_.toString.endsWith(".json")).toVector
    assert(files.size >= 10, files)
    files.foreach { file =>
      val config = PipelineConfig.load(file)
      assertEquals(file.getFileName.toString, s"${config.name}.json")
    }
  }

  test("the demo definition loads to its values") {
    val config = PipelineConfig.load(pipelines.resolve("orders_by_country.json"))
    assertEquals(config.mode, "batch")
    assertEquals(config.extract.map(_.id), Vector("orders", "customers"))
    val orders = config.extract.head.asInstanceOf[FilesExtract]
    assertEquals(orders.options.header, Some(true))
    assertEquals(config.transform.collect { case j: Join => j.on }, Vector(Vector("customer_id")))
    assertEquals(config.load.map(_.id), Vector("load_1_by_country"))
    assertEquals(config.retry, RetryConfig(3, 5.0))
  }

  test("defaults: batch mode, retry 3 x 5 s, a load named after its position and input") {
    val config = parse(minimal)
    assertEquals(config.mode, "batch")
    assertEquals(config.retry, RetryConfig())
    assertEquals(config.transform, Vector.empty)
    assertEquals(config.load.head.id, "load_1_a")
    assertEquals(config.extract.head.asInstanceOf[FilesExtract].options, ReadOptions())
  }

  test("an unknown key is rejected with its path") {
    val msg = failure(minimal.replace("\"mode\": \"append\"", "\"mode\": \"append\", \"mdoe\": 1"))
    assert(msg.startsWith("pipelines/x.json: $.load[0]: unknown key \"mdoe\" (known: id, type, input"), msg)
  }

  test("an unknown key in a nested object is rejected with its path") {
    val msg = failure(minimal.replace("\"schema\": \"a.avsc\"", "\"schema\": \"a.avsc\", \"options\": {\"heder\": true}"))
    assert(msg.startsWith("pipelines/x.json: $.extract[0].options: unknown key \"heder\""), msg)
  }

  test("a wrong type is rejected with its path and both types") {
    assertEquals(
      failure(minimal.replace("\"mode\": \"append\"", "\"mode\": 5")),
      "pipelines/x.json: $.load[0].mode: expected string, got number"
    )
    assertEquals(
      failure(minimal.replace("\"name\": \"p\",", "\"name\": \"p\", \"retry\": {\"max_retries\": \"3\"},")),
      "pipelines/x.json: $.retry.max_retries: expected integer, got string"
    )
    assertEquals(
      failure(minimal.replace("\"name\": \"p\",", "\"name\": \"p\", \"retry\": {\"max_retries\": 2.5},")),
      "pipelines/x.json: $.retry.max_retries: expected integer, got number"
    )
    assertEquals(
      failure(minimal.replace("\"extract\": [", "\"extract\": {\"x\": [").replace("}], \"load\"", "}]}, \"load\"")),
      "pipelines/x.json: $.extract: expected array, got object"
    )
  }

  test("a missing required key is rejected with the object's path") {
    assertEquals(
      failure(minimal.replace("\"path\": \"/out\",", "")),
      "pipelines/x.json: $.load[0]: missing required key \"path\""
    )
    assertEquals(failure(minimal.replace("\"name\": \"p\",", "")), "pipelines/x.json: $: missing required key \"name\"")
  }

  test("an unknown step type names the known ones") {
    assertEquals(
      failure(minimal.replace("\"type\": \"files\", \"path\": \"/in\"", "\"type\": \"ftp\", \"path\": \"/in\"")),
      "pipelines/x.json: $.extract[0].type: not a known extract type (known: files, postgres, mysql, s3, kafka)"
    )
  }

  test("a repeated key and malformed JSON are errors") {
    assert(failure(minimal.replace("\"name\": \"p\",", "\"name\": \"p\", \"name\": \"q\",")).contains("Duplicate field 'name'"))
    assert(failure("{\"name\": ").startsWith("pipelines/x.json: 1:"), failure("{\"name\": "))
    // Read by the streaming parser: what follows the document, and no document at all.
    assert(failure(minimal + " {}").contains("trailing content after the document"), failure(minimal + " {}"))
    assert(failure("  ").endsWith("the file is empty"), failure("  "))
  }

  test("keys that are not identifiers are quoted in the path") {
    val doc = minimal.replace("\"load\": [", "\"transform\": [{\"id\": \"s\", \"type\": \"select\", \"input\": \"a\", " +
      "\"columns\": {\"a b\": 1}}], \"load\": [")
    assertEquals(failure(doc), "pipelines/x.json: $.transform[0].columns[\"a b\"]: expected string, got number")
  }

  test("a document using every key comes back unchanged: each field is read under its name") {
    val full = new String(Files.readAllBytes(Paths.get("src/test/resources/every_key.json")), UTF_8)
    // Through text, so numbers compare by value whatever node class held them.
    val back = Json.writer.readTree(Canonical.render(parse(full)))
    // The keys the document leaves out come back as the schema's defaults.
    val defaulted = Seq("/extract/3" -> "fetch_size", "/load/2" -> "create_table", "/load/2" -> "add_columns")
    assertEquals(
      defaulted.map { case (at, key) => back.at(at).asInstanceOf[ObjectNode].remove(key).toString },
      Seq("10000", "\"never\"", "false")
    )
    assertEquals(withoutNulls(back), Json.writer.readTree(full))
  }

  test("partition bounds are integers or text") {
    val config = parse(
      new String(Files.readAllBytes(Paths.get("src/test/resources/every_key.json")), UTF_8)
    )
    val bounds = config.extract.collect { case j: JdbcExtract => j.partition }.flatten.map(p => (p.lower, p.upper))
    assertEquals(
      bounds,
      Vector((Scalar(1L), Scalar(1000L)), (Scalar("2024-01-01"), Scalar("2024-12-31")))
    )
    assertEquals(
      failure(minimal.replace("\"type\": \"files\", \"path\": \"/in\", \"format\": \"csv\",", "\"type\": \"postgres\", " +
        "\"connection\": \"c\", \"partition\": {\"column\": \"id\", \"lower\": true, \"upper\": 1, \"partitions\": 2},")),
      "pipelines/x.json: $.extract[0].partition.lower: expected integer or string, got boolean"
    )
  }

  private def withoutNulls(node: com.fasterxml.jackson.databind.JsonNode): com.fasterxml.jackson.databind.JsonNode = {
    import com.fasterxml.jackson.databind.node.{ArrayNode, ObjectNode}
    node match {
      case o: ObjectNode =>
        val out = Json.writer.createObjectNode()
        o.properties.asScala.foreach { e =>
          val v = e.getValue
          val empty = v.isNull || (v.isArray && v.isEmpty)
          if (!empty) out.set[com.fasterxml.jackson.databind.JsonNode](e.getKey, withoutNulls(v))
        }
        out
      case a: ArrayNode =>
        val out = Json.writer.createArrayNode()
        a.elements.asScala.foreach(v => out.add(withoutNulls(v)))
        out
      case other => other
    }
  }
}
