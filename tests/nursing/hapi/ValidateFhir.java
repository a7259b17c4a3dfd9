import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.SingleValidationMessage;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;

/**
 * The HAPI FHIR instance validator (org.hl7.fhir.validation inside) for FHIR R4 4.0.1, offline:
 * the core definitions come from hapi-fhir-validation-resources-r4, terminology is checked in
 * memory (UCUM, BCP-47, MIME types, ... and the code systems loaded here); no terminology server
 * is configured, so nothing is fetched from the network.
 *
 * <p>One request per stdin line, one JSON answer per stdout line:
 * {"load": [resources]} adds conformance resources (CodeSystem, ValueSet, StructureDefinition);
 * {"validate": [resources]} answers {"results": [[{severity, location, message, id}]]}.
 */
public class ValidateFhir {
  public static void main(String[] args) throws Exception {
    FhirContext ctx = FhirContext.forR4();
    PrePopulatedValidationSupport loaded = new PrePopulatedValidationSupport(ctx);
    ValidationSupportChain chain = new ValidationSupportChain(
        new DefaultProfileValidationSupport(ctx),
        loaded,
        new CommonCodeSystemsTerminologyService(ctx),
        new InMemoryTerminologyServerValidationSupport(ctx),
        new SnapshotGeneratingValidationSupport(ctx));
    FhirInstanceValidator instanceValidator = new FhirInstanceValidator(chain);
    FhirValidator validator = ctx.newValidator().registerValidatorModule(instanceValidator);
    ObjectMapper json = new ObjectMapper();
    // stdout carries the answers only: anything the libraries print goes to stderr
    PrintStream answers = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    System.setOut(System.err);
    BufferedReader requests = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    answers.println("{\"ready\": true}");
    for (String line; (line = requests.readLine()) != null; ) {
      JsonNode request = json.readTree(line);
      ObjectNode answer = json.createObjectNode();
      if (request.has("load")) {
        for (JsonNode resource : request.get("load")) {
          loaded.addResource(ctx.newJsonParser().parseResource(json.writeValueAsString(resource)));
        }
        chain.invalidateCaches();
        instanceValidator.invalidateCaches();
        answer.put("loaded", request.get("load").size());
      } else {
        ArrayNode results = answer.putArray("results");
        for (JsonNode resource : request.get("validate")) {
          ArrayNode issues = results.addArray();
          for (SingleValidationMessage m :
              validator.validateWithResult(json.writeValueAsString(resource)).getMessages()) {
            ObjectNode issue = issues.addObject();
            issue.put("severity", m.getSeverity().getCode());
            issue.put("location", m.getLocationString());
            issue.put("message", m.getMessage());
            issue.put("id", m.getMessageId());
          }
        }
      }
      answers.println(json.writeValueAsString(answer));
    }
  }
}
